"""Against the real lab cluster (slurm/start.sh): arrays with fake GPUs, MaxArraySize splits, accounting,
a killed task brought back by resubmit, and a dead controller. Slow: TensorFlow starts in every task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, manifest, search, slurm, status
from hpcjobs.cli import cli
from hpcjobs.settings import SlurmSettings

from .conftest import REPO

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("lab_slurm")]

SWEEP = """
name = "{name}"
[data]
source = "{source}"
[model]
hidden = [8]
[train]
epochs = {epochs}
batch_size = 64
[sweep]
"model.hidden" = {hidden}
seeds = {seeds}
[slurm]
time = "00:10:00"
gpus_per_task = {gpus}
gpu_request = "{gpu_request}"
cpus_per_task = 1
mem_gb = 1
array_parallelism = 8
trials_per_gpu = {trials}
runs_per_task = {runs}
additional = {additional}
"""


PYTHON_HPCJOBS = [sys.executable, "-m", "hpcjobs"]


def write_sweep(tmp_path: Path, name: str, **values: object) -> Path:
    """A small moons sweep; one run per array task unless `trials`/`runs` say otherwise."""
    defaults = {
        "source": "moons",
        "epochs": 2,
        "hidden": "[[8]]",
        "seeds": "[0]",
        "gpus": 0,
        "gpu_request": "gpus-per-node",
        "trials": 1,
        "runs": 1,
        "additional": "[]",
    }
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, **{**defaults, **values}))
    return path


def hpcjobs(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def wait_done(sweep: layout.SweepDir, timeout: float = 600) -> status.SweepStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status.gather(sweep, backends.for_executor)
        if st.done:
            return st
        time.sleep(1)  # one sacct call a second: the lab's controller is ours; 3 s cost ~1.5 s a wait
    raise AssertionError(f"sweep not done after {timeout:.0f} s: {st.counts}")


def lab(script: str, **env: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "slurm" / script)],
        check=True,
        env={**os.environ, **env},
        capture_output=True,
        timeout=180,
    )


@pytest.mark.parametrize("gpu_request", ["gpus-per-node", "gres", "gpus"])
def test_digits_array_with_one_fake_gpu_per_task_completes(tmp_path: Path, gpu_request: str) -> None:
    path = write_sweep(
        tmp_path,
        "digits-gpu",
        source="digits",
        epochs=3,
        hidden="[[32], [16, 16]]",
        gpus=1,
        gpu_request=gpu_request,
    )
    code, out = hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r"))
    assert code == 0, out
    sweep = layout.sweep_dir("digits-gpu", tmp_path / "r")
    [sub] = manifest.read(sweep).submissions
    assert (sub.executor, len(sub.tasks)) == ("slurm", 2)

    st = wait_done(sweep)
    assert [(r.state, r.epochs_done, r.epochs) for r in st.runs] == [("COMPLETED", 3, 3)] * 2
    tres = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", sub.job_id, "--format=JobID,AllocTRES"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tres.count("gres/gpu=1") == 2, tres
    code, out = hpcjobs("status", "digits-gpu", "--results", str(tmp_path / "r"))
    assert code == 0 and "COMPLETED 2" in out and "3/3" in out


def test_packed_task_trains_its_runs_in_parallel_processes_on_one_gpu(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        "packed",
        source="digits",
        epochs=2,
        hidden="[[16], [32]]",
        seeds="[0, 1]",
        gpus=1,
        trials=2,
        runs=2,
    )
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r"))[0] == 0
    sweep = layout.sweep_dir("packed", tmp_path / "r")
    [sub] = manifest.read(sweep).submissions
    assert (len(sub.tasks), len(sub.tasks[0]), sub.parallel) == (1, 4, 2)
    st = wait_done(sweep)
    assert [(r.state, r.epochs_done) for r in st.runs] == [("COMPLETED", 2)] * 4
    # Two processes, each with two runs in turn: each process logged its own runs.
    log = sweep.job_log(sub.job_name(0), "out").read_text()
    assert all(f"{r.run_id} epoch 2/2" in log for r in st.runs), log


def test_packing_reads_the_lab_clusters_limits_and_plans_for_its_gpus(tmp_path: Path) -> None:
    gres = subprocess.run(
        ["sinfo", "-h", "-p", "gpu", "-o", "%G"], capture_output=True, text=True, check=True
    )
    gpus = slurm.gres_gpus(gres.stdout.strip())
    assert gpus > 0
    limits = backends.slurm_limits(SlurmSettings(partition="gpu"))
    assert (limits.partition, limits.gpus) == ("gpu", gpus)
    assert limits.pending is not None  # squeue answered
    assert backends.slurm_limits(SlurmSettings()).partition == "gpu"  # the lab's default partition
    room = backends.slurm_room(SlurmSettings(partition="gpu", array_parallelism=16), limits)
    assert room.slots == min(16, gpus, limits.user_gpus or gpus, limits.max_jobs or gpus)
    sweep_file = str(REPO / "examples" / "digits_depth.toml")
    argv = ["submit", sweep_file, "--dry-run", "--executor", "slurm", "--results", str(tmp_path)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert f"{gpus} GPUs in 'gpu'" in result.output


def test_cancel_stops_every_array_of_the_sweep(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "held", hidden="[[4], [8], [16]]", additional='["--hold"]')
    results = str(tmp_path / "r")
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", results)[0] == 0
    sweep = layout.sweep_dir("held", results)
    assert {r.state for r in status.gather(sweep, backends.for_executor).runs} <= {"PENDING", "SUBMITTED"}
    code, out = hpcjobs("cancel", "held", "--results", results)
    assert (code, out.strip()) == (0, f"cancelled jobs: {manifest.read(sweep).submissions[0].job_id}")
    assert wait_done(sweep, timeout=60).counts == {"CANCELLED": 3}
    assert hpcjobs("cancel", "held", "--results", results)[1].strip() == "nothing to cancel"


def test_status_makes_one_accounting_call_per_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_sweep(tmp_path, "count", epochs=1, hidden="[[4], [8], [12]]", seeds="[0, 1]")
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r"))[0] == 0
    sweep = layout.sweep_dir("count", tmp_path / "r")
    calls: list[list[str]] = []
    real = backends._run

    def counting(cmd: list[str], timeout: float = 60) -> str:
        calls.append(cmd)
        return real(cmd, timeout)

    monkeypatch.setattr(backends, "_run", counting)
    for _ in range(3):
        status.gather(sweep, backends.for_executor)
    # One accounting call per refresh; while jobs are active, one squeue call checks that the controller
    # answers (accounting alone would show PENDING forever with the controller down).
    assert [c[0] for c in calls if c[0] == "sacct"] == ["sacct"] * 3
    assert {c[0] for c in calls} <= {"sacct", "squeue"} and len(calls) <= 6
    monkeypatch.undo()
    assert {r.state for r in wait_done(sweep).runs} == {"COMPLETED"}


@pytest.fixture
def small_max_array() -> Iterator[int]:
    lab("start.sh", MAX_ARRAY_SIZE="11")
    try:
        yield 11
    finally:
        lab("start.sh")


def test_sweep_larger_than_max_array_size_is_split_and_completes(
    tmp_path: Path, small_max_array: int
) -> None:
    hidden = "[" + ", ".join(f"[{u}]" for u in range(2, 17)) + "]"  # 15 architectures × 2 seeds = 30 runs
    path = write_sweep(tmp_path, "split", epochs=1, hidden=hidden, seeds="[0, 1]")
    code, out = hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r"))
    assert code == 0, out
    sweep = layout.sweep_dir("split", tmp_path / "r")
    subs = manifest.read(sweep).submissions
    assert [len(s.tasks) for s in subs] == [11, 11, 8]
    assert len({s.job_id for s in subs}) == 3
    st = wait_done(sweep, timeout=900)
    assert st.counts == {"COMPLETED": 30}


def _task_pids(sweep: layout.SweepDir) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", f"submitit.core._submit {sweep.submitit_dir.resolve()}"],
        capture_output=True,
        text=True,
    ).stdout
    return [int(p) for p in out.split()]


def test_killed_task_is_failed_and_resubmit_brings_it_to_completed(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "kill", epochs=400)
    results = tmp_path / "r"
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(results))[0] == 0
    sweep = layout.sweep_dir("kill", results)
    [run_id] = manifest.read(sweep).run_ids
    deadline = time.monotonic() + 300
    while not (sweep.history(run_id).is_file() and len(sweep.history(run_id).read_text().splitlines()) > 2):
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(1)
    for pid in _task_pids(sweep):
        os.kill(pid, signal.SIGKILL)

    st = wait_done(sweep)
    assert st.runs[0].state == "FAILED", st.runs[0]
    code, out = hpcjobs("resubmit", "kill", "--failed", "--results", str(results))
    assert code == 0 and "resubmitted 1 run " in out, out
    assert (
        hpcjobs("resubmit", "kill", "--failed", "--results", str(results))[1].strip()
        == "kill: nothing to resubmit"
    )
    st = wait_done(sweep)
    assert (st.runs[0].state, st.runs[0].epochs_done) == ("COMPLETED", 400)
    first, second = manifest.read(sweep).submissions
    # Resumed from its Keras backup: the second job never trained epoch 1, and no epoch is lost.
    second_log = sweep.job_log(second.job_name(0), "out").read_text()
    assert f"{run_id} epoch 1/400:" in sweep.job_log(first.job_name(0), "out").read_text()
    assert f"{run_id} epoch 1/400:" not in second_log and f"{run_id} epoch 400/400:" in second_log
    assert sorted(set(_history_epochs(sweep, run_id))) == list(range(400))


def test_dead_controller_fails_submit_cleanly_and_status_reads_disk(tmp_path: Path) -> None:
    done = write_sweep(tmp_path, "before", epochs=1)
    results = tmp_path / "r"
    assert hpcjobs("submit", str(done), "--executor", "slurm", "--results", str(results))[0] == 0
    wait_done(layout.sweep_dir("before", results))
    lab("stop-controller.sh")
    try:
        path = write_sweep(tmp_path, "down")
        code, out = hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(results))
        assert code == 1
        assert out.count("\n") == 1 and out.startswith("hpcjobs: error: Slurm is not reachable"), out
        assert not (results / "down").exists()
        code, out = hpcjobs("status", "before", "--results", str(results))
        assert code == 0 and "COMPLETED 1" in out, out
    finally:
        lab("start.sh")


def _history_epochs(sweep: layout.SweepDir, run_id: str) -> list[int]:
    """The epoch column of history.csv as written, duplicates included."""
    lines = sweep.history(run_id).read_text().splitlines() if sweep.history(run_id).is_file() else []
    if not lines:
        return []
    column = lines[0].split(",").index("epoch")
    return [int(line.split(",")[column]) for line in lines[1:] if line]


def _start_long_run(tmp_path: Path, name: str, epochs: int) -> tuple[layout.SweepDir, str, str]:
    """Submit one long moons run and wait until it has finished a few epochs: (sweep, run id, job id)."""
    results = tmp_path / "r"
    path = write_sweep(tmp_path, name, epochs=epochs)
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(results))[0] == 0
    sweep = layout.sweep_dir(name, results)
    man = manifest.read(sweep)
    [run_id] = man.run_ids
    deadline = time.monotonic() + 300
    while len(_history_epochs(sweep, run_id)) < 5:
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.5)
    return sweep, run_id, man.submissions[0].job_id


def _attempts(job_id: str) -> list[str]:
    out = subprocess.run(
        ["sacct", "-D", "-X", "-n", "-P", "-j", job_id, "--format=State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line]


@pytest.mark.parametrize("interrupt", ["usr2", "requeue"])
def test_interrupted_run_resumes_with_every_epoch_once(tmp_path: Path, interrupt: str) -> None:
    epochs = 150
    sweep, run_id, job_id = _start_long_run(tmp_path, f"resume-{interrupt}", epochs)
    before = len(set(_history_epochs(sweep, run_id)))
    command = ["scancel", "--signal=USR2", job_id] if interrupt == "usr2" else ["scontrol", "requeue", job_id]
    subprocess.run(command, check=True, timeout=30)

    st = wait_done(sweep)
    assert (st.runs[0].state, st.runs[0].epochs_done) == ("COMPLETED", epochs)
    written = _history_epochs(sweep, run_id)
    assert sorted(set(written)) == list(range(epochs))
    assert len(written) - epochs <= 1, f"{len(written) - epochs} epochs redone"
    assert before < epochs, "the run finished before it was interrupted: the test proved nothing"
    assert "REQUEUED" in _attempts(job_id) or len(_attempts(job_id)) > 1, _attempts(job_id)
    assert not sweep.backup_dir(run_id).exists()


def test_diverging_run_is_diverged_although_slurm_says_completed(tmp_path: Path) -> None:
    path = tmp_path / "div.toml"
    path.write_text(
        'name = "div"\n[data]\nsource = "moons"\n[train]\nepochs = 5\noptimizer = "sgd"\n'
        "learning_rate = 1e10\n[slurm]\ngpus_per_task = 0\ncpus_per_task = 1\nmem_gb = 1\n"
        "runs_per_task = 1\n"
    )
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r"))[0] == 0
    sweep = layout.sweep_dir("div", tmp_path / "r")
    [run] = wait_done(sweep).runs
    assert run.state == "DIVERGED", run
    [sub] = manifest.read(sweep).submissions
    deadline = time.monotonic() + 60  # result.json is written just before the job itself ends
    while _attempts(sub.job_id) != ["COMPLETED"] and time.monotonic() < deadline:
        time.sleep(1)
    assert _attempts(sub.job_id) == ["COMPLETED"]
    code, out = hpcjobs("collect", "div", "--results", str(tmp_path / "r"), "--format", "csv")
    assert code == 0 and "1 DIVERGED" in out


def test_exported_task_signalled_for_its_time_limit_requeues_and_resumes(tmp_path: Path) -> None:
    """export-sbatch's script, submitted by hand: USR2 (what Slurm sends 120 s before the time limit)
    requeues the array task, and the run resumes from its backup instead of starting over."""
    epochs, results = 150, tmp_path / "r"
    path = write_sweep(tmp_path, "export-resume", epochs=epochs, seeds="[0, 1]")
    assert hpcjobs("export-sbatch", str(path), "--results", str(results))[0] == 0
    sweep = layout.sweep_dir("export-resume", results)
    run_id = manifest.read(sweep).run_ids[0]
    submitted = subprocess.run(
        ["sbatch", "--parsable", str(sweep.export_script)], check=True, capture_output=True, text=True
    )
    task = f"{submitted.stdout.strip().split(';')[0]}_0"
    deadline = time.monotonic() + 300
    while len(_history_epochs(sweep, run_id)) < 5:
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.5)
    before = len(set(_history_epochs(sweep, run_id)))
    subprocess.run(["scancel", "--signal=USR2", task], check=True, timeout=30)

    st = wait_done(sweep)
    assert [(r.state, r.epochs_done) for r in st.runs] == [("COMPLETED", epochs)] * 2
    written = _history_epochs(sweep, run_id)
    assert sorted(set(written)) == list(range(epochs))
    assert len(written) - epochs <= 1, f"{len(written) - epochs} epochs redone"
    assert before < epochs, "the run finished before it was interrupted: the test proved nothing"
    assert "REQUEUED" in _attempts(task) or len(_attempts(task)) > 1, _attempts(task)
    assert f"requeueing {task}" in (sweep.submitit_dir / f"{task}_0_log.out").read_text()


def test_a_halving_search_advances_through_its_rungs_with_the_submitting_shell_gone(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "halve", epochs=9, hidden="[[2], [4], [8]]", runs=3)
    path.write_text(path.read_text() + '[search]\nmethod = "halving"\nmin_epochs = 1\neta = 3\n')
    # Submitted by a process that exits at once: only Slurm's dependent promote jobs can go on.
    shell = subprocess.run(
        [*PYTHON_HPCJOBS, "submit", str(path), "--executor", "slurm", "--results", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    sweep = layout.sweep_dir("halve", tmp_path / "r")
    state = _search_ended(sweep)
    assert state is not None and state.ended.startswith("finished: best configuration"), state
    assert [(r.epochs, len(r.runs)) for r in state.rungs] == [(1, 3), (3, 1), (9, 1)]
    assert all(r.promote_jobs for r in state.rungs)
    (winner,) = state.rungs[-1].runs
    epochs = [line.split(",")[0] for line in sweep.history(winner).read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(9)]  # one run, epochs 1..9 each once, over three arrays
    st = status.gather(sweep, backends.for_executor)
    assert st.counts == {"COMPLETED": 1, "PRUNED": 2}
    assert {r.run_id: r.rung for r in st.runs}[winner] == "3/3"
    promote_states = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(state.rungs[-1].promote_jobs), "--format=State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert promote_states == ["COMPLETED"]


def _search_ended(sweep: layout.SweepDir, timeout: float = 600) -> search.SearchState | None:
    deadline = time.monotonic() + timeout
    while (state := search.read(sweep)) is not None and not state.ended and time.monotonic() < deadline:
        time.sleep(1)
    return state


def test_a_rung_cancelled_mid_way_is_resumed_by_resubmit_without_losing_the_search(tmp_path: Path) -> None:
    # Enough data that the promoted run's second rung (epochs 11..30) lasts well over the lab's KillWait (5 s):
    # the scancel below must land while it trains, and submitit lets a task go on for KillWait after SIGTERM
    # (60,000 rows: the rung's last 18 epochs took ~5 s, and once in a CI run it finished and was promoted).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150_000, 16)).astype(np.float32)
    np.savez(tmp_path / "wide.npz", x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    path = write_sweep(
        tmp_path, "halve-cancel", source="wide.npz", epochs=90, hidden="[[2], [4], [8]]", runs=3
    )
    path.write_text(path.read_text() + '[search]\nmethod = "halving"\nmin_epochs = 10\neta = 3\n')
    results = tmp_path / "r"
    assert hpcjobs("submit", str(path), "--executor", "slurm", "--results", str(results))[0] == 0
    sweep = layout.sweep_dir("halve-cancel", results)
    deadline = time.monotonic() + 400
    while True:  # the promoted run is training its second rung: epochs 11..30
        state = search.read(sweep)
        assert state is not None and time.monotonic() < deadline, "the second rung never started"
        if len(state.rungs) == 2 and state.rungs[1].jobs:
            (survivor,) = state.rungs[1].runs
            if len(set(_history_epochs(sweep, survivor))) > 11:
                break
        time.sleep(0.5)
    subprocess.run(["scancel", *state.rungs[1].jobs], check=True, timeout=30)
    assert not sweep.result(survivor).exists(), "the rung ended before the scancel: nothing was cancelled"
    wait_done(sweep)
    deadline = time.monotonic() + 120  # the dependent promote runs and finds the rung broken
    while subprocess.run(
        ["squeue", "-h", "-j", ",".join(state.rungs[1].promote_jobs)], capture_output=True, text=True
    ).stdout.strip():
        assert time.monotonic() < deadline
        time.sleep(2)
    stalled = hpcjobs("promote", "halve-cancel", "--results", str(results))[1]
    assert "runs ended without a result (CANCELLED" in stalled and "resubmit" in stalled, stalled

    code, out = hpcjobs("resubmit", "halve-cancel", "--failed", "--results", str(results))
    assert code == 0 and "resubmitted 1 run " in out, out
    state = _search_ended(sweep)
    assert state is not None and state.ended.startswith("finished"), state
    assert [(r.epochs, len(r.runs)) for r in state.rungs] == [(10, 3), (30, 1), (90, 1)]
    (winner,) = state.rungs[-1].runs
    written = _history_epochs(sweep, winner)
    assert sorted(set(written)) == list(range(90)) and len(written) - 90 <= 1, written
