"""Packing small trainings: how many per GPU, how many per process, and which process trains which run."""

from __future__ import annotations

import pytest

from hpcjobs import slurm
from hpcjobs.spec import mlp_params

GPU = {"gpus_per_task": 1, "trials_per_gpu": "auto", "runs_per_task": "auto"}


@pytest.mark.parametrize(
    ("n_in", "hidden", "n_out", "params"),
    [
        (2, [3, 5], 2, 41),
        (64, [64, 32], 10, 6_570),
        (64, [20, 50, 70, 100, 70, 50, 20], 10, 24_870),
        (784, [256, 128], 10, 235_146),
    ],
)
def test_mlp_params_match_keras_counts(n_in: int, hidden: list[int], n_out: int, params: int) -> None:
    # The first three are the parameter counts Keras reported for the README's example runs.
    assert mlp_params(n_in, hidden, n_out) == params


@pytest.mark.parametrize(
    ("params", "trials", "runs"),
    [(41, 8, 4), (99_999, 8, 4), (235_146, 4, 2), (5_000_000, 2, 1), (50_000_000, 1, 1)],
)
def test_auto_packing_shrinks_as_models_grow(params: int, trials: int, runs: int) -> None:
    got = slurm.packing(GPU, params)
    assert (got["trials_per_gpu"], got["runs_per_task"]) == (trials, runs)


def test_without_a_gpu_every_process_gets_its_own_task() -> None:
    got = slurm.packing({**GPU, "gpus_per_task": 0}, 41)
    assert (got["trials_per_gpu"], got["runs_per_task"]) == (1, 4)


def test_explicit_values_are_kept() -> None:
    got = slurm.packing({**GPU, "trials_per_gpu": 3, "runs_per_task": 1}, 41)
    assert (got["trials_per_gpu"], got["runs_per_task"]) == (3, 1)


def test_tasks_hold_trials_times_runs_runs() -> None:
    ids = [f"r{i}" for i in range(10)]
    settings = {"trials_per_gpu": 2, "runs_per_task": 2}
    assert slurm.group(ids, settings) == [ids[0:4], ids[4:8], ids[8:10]]
