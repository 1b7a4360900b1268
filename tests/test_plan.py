"""The pure training plan (plan.py): decided without Keras, so these run in the fast tier."""

from __future__ import annotations

import math

import pytest

from hpcjobs import plan


@pytest.mark.parametrize(
    ("loss", "n_classes", "expected"),
    [
        (math.nan, 10, True),
        (math.inf, 2, True),
        (2.05, 2, True),  # JAX, lr 1e10, moons: the clipped loss saturates instead of becoming NaN
        (13.6, 10, True),  # JAX, lr 1e10, digits
        (0.49, 2, False),  # lr 0.1 trains: the largest first-epoch loss measured on moons
        (1.33, 10, False),  # and on digits
        (2 * math.log(10), 10, False),  # the bound itself is not past it
    ],
)
def test_a_run_diverged_when_its_loss_is_not_finite_or_past_twice_a_uniform_guess(
    loss: float, n_classes: int, expected: bool
) -> None:
    assert plan.diverged(loss, n_classes) is expected
