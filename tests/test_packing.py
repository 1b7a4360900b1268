"""Packing small trainings: how many per GPU, how many per process, and which process trains which run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcjobs import slurm, sweep
from hpcjobs.backends import FakeBackend, LocalBackend, local_workers, visible_gpus
from hpcjobs.plan import mlp_params
from hpcjobs.settings import SlurmSettings
from hpcjobs.vocab import lanes

GPU = {"gpus_per_task": 1, "trials_per_gpu": "auto", "runs_per_task": "auto"}


def pack(table: dict[str, Any], params: int, n_runs: int) -> SlurmSettings:
    """slurm.packing of a [slurm] table given as the sweep file gives it, defaults for the rest."""
    return slurm.packing(SlurmSettings.from_dict(table), params, n_runs)


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


GPU = {**GPU, "array_parallelism": 16, "cpus_per_task": 8}
LESSON_MLP = 235_146


@pytest.mark.parametrize("n_runs", [1, 6, 16])
def test_runs_that_fit_the_parallel_slots_get_a_task_each(n_runs: int) -> None:
    got = pack(GPU, LESSON_MLP, n_runs)
    assert (got.trials_per_gpu, got.runs_per_task) == (1, 1)


@pytest.mark.parametrize(
    ("n_runs", "trials", "runs"),
    [
        (24, 2, 1),  # 12 tasks of 2: every slot but 4 busy, one run per process
        (64, 4, 1),  # 16 tasks × 4 processes
        (65, 4, 2),  # one run more than 16 × 4: each process trains 2 in turn
        (1000, 4, 16),
    ],
)
def test_beyond_the_slots_processes_share_a_gpu_and_train_runs_in_turn(
    n_runs: int, trials: int, runs: int
) -> None:
    got = pack(GPU, LESSON_MLP, n_runs)
    assert (got.trials_per_gpu, got.runs_per_task) == (trials, runs)
    tasks = -(-n_runs // (trials * runs))
    assert tasks <= GPU["array_parallelism"]


@pytest.mark.parametrize(("params", "trials"), [(41, 4), (LESSON_MLP, 4), (5_000_000, 2), (50_000_000, 1)])
def test_fewer_trainings_share_a_gpu_as_models_grow(params: int, trials: int) -> None:
    assert pack(GPU, params, 10_000).trials_per_gpu == trials


def test_never_more_processes_than_cores() -> None:
    got = pack({**GPU, "cpus_per_task": 2}, LESSON_MLP, 1000)
    assert (got.trials_per_gpu, got.runs_per_task) == (2, 32)


def test_without_a_gpu_every_process_gets_its_own_task() -> None:
    got = pack({**GPU, "gpus_per_task": 0}, 41, 40)
    assert (got.trials_per_gpu, got.runs_per_task) == (1, 3)


def test_explicit_values_are_kept() -> None:
    got = pack({**GPU, "trials_per_gpu": 3, "runs_per_task": 1}, 41, 1000)
    assert (got.trials_per_gpu, got.runs_per_task) == (3, 1)
    assert pack({**GPU, "runs_per_task": 5}, 41, 1000).trials_per_gpu == 4


@given(
    st.integers(1, 5000),
    st.integers(1, 64),
    st.integers(1, 16),
    st.integers(0, 2),
    st.sampled_from([41, LESSON_MLP, 5_000_000, 50_000_000]),
)
def test_auto_tasks_fit_the_slots_and_processes_the_cores(
    n_runs: int, slots: int, cpus: int, gpus: int, params: int
) -> None:
    settings = {**GPU, "array_parallelism": slots, "cpus_per_task": cpus, "gpus_per_task": gpus}
    got = pack(settings, params, n_runs)
    trials, runs = got.trials_per_gpu, got.runs_per_task
    assert 1 <= trials <= max(1, cpus) and runs >= 1
    assert len(slurm.group([str(i) for i in range(n_runs)], got)) <= slots
    # No more runs per process than needed: one fewer would not fit the slots.
    assert runs == 1 or -(-n_runs // (trials * (runs - 1))) > slots


def test_tasks_hold_trials_times_runs_runs() -> None:
    ids = [f"r{i}" for i in range(10)]
    settings = SlurmSettings(trials_per_gpu=2, runs_per_task=2)
    assert slurm.group(ids, settings) == [ids[0:4], ids[4:8], ids[8:10]]


def test_submit_puts_the_runs_of_one_program_together_in_its_tasks(tmp_path: Path) -> None:
    # The learning rate varies slowest in file order: expanded, the two architectures alternate.
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n[data]\nsource = "moons"\n[slurm]\narray_parallelism = 2\ncpus_per_task = 2\n'
        '[sweep]\n"train.learning_rate" = [0.01, 0.001]\n"model.hidden" = [[4], [8, 8]]\nseeds = [0, 1, 2]\n'
    )
    fake = FakeBackend()
    outcome = sweep.submit(path, tmp_path / "results", fake, lambda executor: fake, dry_run=True)
    assert [task_programs(task) for task in outcome.tasks] == [["4"], ["8x8"]]
    assert [len(task) for task in outcome.tasks] == [6, 6]  # 12 runs, 2 slots: 2 tasks × 2 processes × 3 runs
    for task in outcome.tasks:
        assert [task_programs(lane) for lane in lanes(task, outcome.settings.parallel)] == [
            task_programs(task)
        ] * 2


def task_programs(run_ids: list[str]) -> list[str]:
    return sorted({run_id.split("hidden-")[1].split("__")[0] for run_id in run_ids})


@pytest.mark.parametrize(
    ("environ", "smi", "gpus"),
    [
        ({}, None, []),  # no nvidia-smi: no GPU
        ({}, "GPU 0: NVIDIA H200 (UUID: GPU-1)\nGPU 1: NVIDIA H200 (UUID: GPU-2)\n", [0, 1]),
        ({"CUDA_VISIBLE_DEVICES": ""}, "GPU 0: NVIDIA H200 (UUID: GPU-1)\n", []),  # hidden, as submitit hides
        ({"CUDA_VISIBLE_DEVICES": "-1"}, None, []),
        ({"CUDA_VISIBLE_DEVICES": "3,1"}, None, [3, 1]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-77c1"}, None, [0, 1]),
    ],
)
def test_visible_gpus(environ: dict[str, str], smi: str | None, gpus: list[int]) -> None:
    assert visible_gpus(environ, smi) == gpus


def test_the_local_executor_shares_a_visible_gpu_and_otherwise_takes_a_core_per_process() -> None:
    assert local_workers(2, []) == (2, [])
    assert local_workers(16, [3, 1]) == (4, [3])  # the first visible GPU, 4 processes sharing it
    assert local_workers(2, [0]) == (2, [0])  # never more processes than cores
    runs = [f"r{i}" for i in range(24)]
    on_gpu = LocalBackend(max_parallel=16, gpus=[0])
    assert (len(on_gpu.group(runs, SlurmSettings())), on_gpu.device) == (4, "GPU 0, shared by 4 processes")
    on_cpu = LocalBackend(max_parallel=2, gpus=[])
    assert (len(on_cpu.group(runs, SlurmSettings())), on_cpu.device) == (2, "CPU, 2 processes")
