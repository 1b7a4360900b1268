"""The pure training plan (plan.py): decided without Keras, so these run in the fast tier."""

from __future__ import annotations

import math

import pytest

from hpcjobs import plan


@pytest.mark.parametrize(
    ("loss", "previous", "n_classes", "expected"),
    [
        (math.nan, math.nan, 10, True),
        (math.inf, 0.5, 2, True),
        (2.59, 2.05, 2, True),  # JAX, lr 1e10, moons: the clipped loss saturates instead of becoming NaN
        (14.6, 14.6, 10, True),  # JAX, lr 1e10, digits: flat at the clip
        (2.05, math.nan, 2, False),  # a first epoch is judged on NaN/inf alone
        (5.1, 7.2, 10, False),  # unscaled digits at lr 1e-2 on JAX: high, but coming down (then trains)
        (0.49, 0.6, 2, False),  # lr 0.1 trains: the largest loss measured on moons
        (2 * math.log(10), 5.0, 10, False),  # the bound itself is not past it
    ],
)
def test_a_run_diverged_when_its_loss_is_not_finite_or_stays_past_twice_a_uniform_guess(
    loss: float, previous: float, n_classes: int, expected: bool
) -> None:
    assert plan.diverged(loss, previous, n_classes) is expected
