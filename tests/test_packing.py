"""Packing small trainings: how many per GPU, how many per process, and which process trains which run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcjobs import packing, slurm, sweep
from hpcjobs.backends import FakeBackend, LocalBackend, local_workers, visible_gpus
from hpcjobs.packplan import Room
from hpcjobs.plan import mlp_params
from hpcjobs.settings import DataSettings, ModelSettings, Run, Settings, SlurmSettings, TrainSettings
from hpcjobs.vocab import lanes

GPU = {"gpus_per_task": 1, "trials_per_gpu": "auto", "runs_per_task": "auto"}


def runs(n: int, programs: int = 1, epochs: int = 20) -> list[Run]:
    """n runs of `programs` architectures (in program order), `epochs` each."""
    out = []
    for i in range(n):
        hidden = (8 * (1 + i * programs // n),)
        settings = Settings(
            DataSettings("digits"), ModelSettings(hidden=hidden), TrainSettings(epochs=epochs)
        )
        out.append(Run(f"r{i}", f"c{hidden[0]}", i, settings))
    return out


def pack(
    table: dict[str, Any],
    n_runs: int,
    epoch_s: float,
    room: Room,
    max_processes: int = 4,
    startup_s: float = 18.0,
) -> SlurmSettings:
    """packing.pack of a [slurm] table as the sweep file gives it, runs of one program, literal costs."""
    slurm_table = SlurmSettings.from_dict({"time": "0", **table})
    the_runs = runs(n_runs)
    given = packing.inputs(the_runs, {"c8": 41}, slurm_table, [], max_processes)
    given = replace(given, startup_s=startup_s, epoch_s={"c8": epoch_s})
    return packing.pack(the_runs, slurm_table, given, room)[0]


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
SIXTEEN = Room(16, "16 GPUs", queue_s=5.0, gpu=True)


@pytest.mark.parametrize("n_runs", [1, 6, 16])
def test_runs_that_fit_the_slots_get_a_task_each_when_training_dominates(n_runs: int) -> None:
    got = pack(GPU, n_runs, epoch_s=30.0, room=SIXTEEN)
    assert (got.trials_per_gpu, got.runs_per_task) == (1, 1)


def test_short_runs_go_into_few_full_tasks_not_a_task_each() -> None:
    # The lab case: 24 digits runs, ~2.6 s each, 2 fake GPUs (CPU training), 18 s a process.
    lab = Room(2, "2 GPUs in 'gpu'", queue_s=5.0, gpu=False)
    got = pack({**GPU, "cpus_per_task": 2}, 24, epoch_s=0.105, room=lab)
    assert (got.trials_per_gpu, got.runs_per_task) == (1, 12)


def test_beyond_the_slots_processes_share_a_gpu_and_train_runs_in_turn() -> None:
    got = pack(GPU, 1000, epoch_s=0.1, room=SIXTEEN)
    assert got.trials_per_gpu == 4 and got.runs_per_task == 16  # 16 tasks × 4 processes × 16 runs


def test_processes_share_a_gpu_only_once_earlier_runs_trained_on_one() -> None:
    table = SlurmSettings.from_dict({**GPU, "time": "0"})
    the_runs = runs(1000)
    slurm_room = Room(16, "16 GPUs in 'gpu'")  # whether its GPUs are real, Slurm does not say
    unmeasured = packing.inputs(the_runs, {"c8": 41}, table, [], 4)
    assert packing.pack(the_runs, table, unmeasured, slurm_room)[0].trials_per_gpu == 1
    row = {"backend": "tensorflow", "device": "NVIDIA H200", "startup_seconds": 18.0}
    measured_on_gpu = packing.inputs(the_runs, {"c8": 41}, table, [row], 4)
    assert packing.pack(the_runs, table, measured_on_gpu, slurm_room)[0].trials_per_gpu == 4
    on_cpu = packing.inputs(the_runs, {"c8": 41}, table, [{**row, "device": "cpu"}], 4)
    assert packing.pack(the_runs, table, on_cpu, slurm_room)[0].trials_per_gpu == 1


@pytest.mark.parametrize(("params", "trials"), [(41, 4), (LESSON_MLP, 4), (5_000_000, 2), (50_000_000, 1)])
def test_fewer_trainings_share_a_gpu_as_models_grow(params: int, trials: int) -> None:
    assert slurm.trials_per_gpu(params) == trials


def test_never_more_processes_than_cores_or_memory_allows() -> None:
    table = SlurmSettings.from_dict({**GPU, "cpus_per_task": 2, "mem_gb": 8})
    assert sweep.max_processes(runs(4), [(64, 10)], table) == 2
    roomy = replace(table, cpus_per_task=16)
    assert sweep.max_processes(runs(4), [(64, 10)], roomy) == 4  # the GPU's room for a small model
    # 0.95 M weights and a 4,096-row evaluation batch of 1,200 units: ~35 MB each, 2 in 75 MB
    wide = [replace(r, settings=r.settings.with_value("model.hidden", [1_200])) for r in runs(2)]
    assert sweep.max_processes(wide, [(784, 10)], replace(roomy, mem_gb=0.07)) == 2


def test_without_a_gpu_every_process_gets_its_own_task() -> None:
    got = pack({**GPU, "gpus_per_task": 0}, 1000, epoch_s=0.1, room=SIXTEEN)
    assert got.trials_per_gpu == 1


def test_explicit_values_are_kept() -> None:
    got = pack({**GPU, "trials_per_gpu": 3, "runs_per_task": 1}, 1000, epoch_s=0.1, room=SIXTEEN)
    assert (got.trials_per_gpu, got.runs_per_task) == (3, 1)
    assert pack({**GPU, "runs_per_task": 5}, 1000, epoch_s=0.1, room=SIXTEEN).runs_per_task == 5
    assert pack({**GPU, "trials_per_gpu": 2}, 1000, epoch_s=0.1, room=SIXTEEN).trials_per_gpu == 2


def test_the_local_executor_packs_one_process_a_task_no_more_tasks_than_workers() -> None:
    local = Room(2, "CPU, 2 processes", queue_s=0.0, all_at_once=True, gpu=False)
    got = pack({**GPU, "trials_per_gpu": 4, "runs_per_task": 1}, 24, epoch_s=0.105, room=local)
    assert (got.trials_per_gpu, got.runs_per_task) == (1, 12)  # the [slurm] table's packing is Slurm's


@given(
    st.integers(1, 400),
    st.integers(1, 64),
    st.integers(1, 16),
    st.integers(0, 2),
    st.floats(0.01, 30.0),
)
def test_auto_packs_every_run_and_processes_the_cores(
    n_runs: int, slots: int, cpus: int, gpus: int, epoch_s: float
) -> None:
    settings = {**GPU, "array_parallelism": slots, "cpus_per_task": cpus, "gpus_per_task": gpus}
    room = Room(slots, "", queue_s=5.0, gpu=gpus > 0)
    got = pack(settings, n_runs, epoch_s, room, max_processes=min(cpus, 4))
    trials, per_process = got.trials_per_gpu, got.runs_per_task
    assert 1 <= trials <= max(1, min(cpus, 4)) and per_process >= 1
    assert trials == 1 or gpus > 0
    tasks = slurm.group([str(i) for i in range(n_runs)], got)
    assert sum(map(len, tasks)) == n_runs


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
    fake = FakeBackend(scripted_room=Room(2, "2 GPUs", gpu=True))
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
    packed = SlurmSettings(trials_per_gpu=1, runs_per_task=6)
    assert (len(on_gpu.group(runs, packed)), on_gpu.device) == (4, "GPU 0, shared by 4 processes")
    assert on_gpu.room(packed) == Room(4, "GPU 0, shared by 4 processes", 0.0, all_at_once=True, gpu=True)
    on_cpu = LocalBackend(max_parallel=2, gpus=[])
    assert (len(on_cpu.group(runs, packed)), on_cpu.device) == (2, "CPU, 2 processes")  # never beyond workers
