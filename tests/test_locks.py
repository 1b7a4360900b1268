"""Two commands at once on one sweep, two workers on one run: nothing trained twice, nothing lost.

Threads stand in for processes: flock locks belong to open files, so two opens in one process conflict
exactly as two processes do. The lab-cluster versions are in test_safety_lab.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, locks, manifest, status, worker
from hpcjobs import sweep as sweeps
from hpcjobs.cli import cli
from hpcjobs.settings import SlurmSettings
from hpcjobs.slurm import JobRow
from hpcjobs.vocab import Submission

SWEEP = 'name = "race"\n[data]\nsource = "moons"\n[train]\nepochs = 2\n[sweep]\nseeds = [0, 1, 2]\n'


class SlowFake(backends.FakeBackend):
    """A scheduler that takes a while to accept a submission: the window two commands race in."""

    def submit(self, sweep: layout.SweepDir, tasks: list[list[str]], settings: SlurmSettings) -> list[Any]:
        time.sleep(0.5)
        return super().submit(sweep, tasks, settings)


@pytest.fixture
def fake() -> SlowFake:
    return SlowFake()


def _backend_for(fake: backends.FakeBackend) -> Callable[[str], backends.Backend]:
    return lambda executor: fake


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment in threads; each gives its return value or its exception."""
    outcomes: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _submitted_runs(subs: Sequence[Submission]) -> list[str]:
    return [run_id for s in subs for task in s.tasks for run_id in task]


@pytest.fixture
def failed_sweep(tmp_path: Path, fake: SlowFake) -> Iterator[layout.SweepDir]:
    """A sweep whose three runs failed: each has a FAILED result and its job has ended."""
    path = tmp_path / "race.toml"
    path.write_text(SWEEP)
    outcome = sweeps.submit(path, tmp_path / "results", fake, _backend_for(fake))
    for run_id in outcome.to_submit:
        layout.write_json(outcome.sweep.result(run_id), {"run_id": run_id, "status": "FAILED", "error": "x"})
    fake.scripted = {(s.job_id, i): JobRow("FAILED") for s in fake.submitted for i in range(len(s.tasks))}
    yield outcome.sweep


def test_two_simultaneous_first_submits_submit_each_run_once(tmp_path: Path, fake: SlowFake) -> None:
    path = tmp_path / "race.toml"
    path.write_text(SWEEP)
    results = tmp_path / "results"
    first, second = _together(*[lambda: sweeps.submit(path, results, fake, _backend_for(fake))] * 2)
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert sorted(len(o.to_submit) for o in (first, second)) == [0, 3]
    man = manifest.read(layout.SweepDir(results / "race"))
    assert sorted(_submitted_runs(man.submissions)) == sorted(man.run_ids)
    assert _submitted_runs(fake.submitted) == _submitted_runs(man.submissions)


def test_two_concurrent_resubmits_submit_each_failed_run_once_and_lose_no_result(
    failed_sweep: layout.SweepDir, fake: SlowFake
) -> None:
    before = len(fake.submitted)
    outcomes = _together(*[lambda: sweeps.resubmit(failed_sweep, "failed", _backend_for(fake))] * 2)
    assert sorted(len(o.to_submit) for o in outcomes) == [0, 3], outcomes
    again = _submitted_runs(fake.submitted[before:])
    assert sorted(again) == sorted(manifest.read(failed_sweep).run_ids)  # each run once
    assert len(manifest.read(failed_sweep).submissions) == len(fake.submitted)  # every one recorded
    for run_id in again:  # the failed attempts' errors are kept beside
        assert layout.read_json(failed_sweep.previous_result(run_id))["status"] == "FAILED"


def test_a_second_command_waits_briefly_then_says_the_sweep_is_busy(
    failed_sweep: layout.SweepDir, fake: SlowFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "SWEEP_WAIT_S", 0.3)
    monkeypatch.setattr(backends, "for_executor", _backend_for(fake))
    results = str(failed_sweep.root.parent)
    with locks.sweep_lock(failed_sweep):
        outcome = _together(lambda: CliRunner().invoke(cli, ["resubmit", "race", "--results", results]))[0]
    assert outcome.exit_code == 1
    assert outcome.output.count("\n") == 1
    assert outcome.output.startswith("hpcjobs: error: sweep 'race' is busy: another hpcjobs command")
    assert layout.read_json(failed_sweep.result(_ids(failed_sweep)[0]))["status"] == "FAILED"


def _ids(sweep: layout.SweepDir) -> list[str]:
    return manifest.read(sweep).run_ids


def _hold_run_lock(sweep: layout.SweepDir, run_id: str) -> tuple[threading.Event, threading.Thread]:
    """Another 'process' holding the run lock until the returned event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with locks.run_lock(sweep, run_id) as lock:
            assert lock is not None
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(5)
    return release, thread


def test_a_worker_skips_a_run_another_process_is_training(
    failed_sweep: layout.SweepDir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(locks, "RUN_WAIT_S", 0.1)
    run_id = _ids(failed_sweep)[0]
    release, thread = _hold_run_lock(failed_sweep, run_id)
    try:
        assert worker.run_one(failed_sweep, run_id) == "RUNNING"
    finally:
        release.set()
        thread.join()
    assert "is being trained by process" in capsys.readouterr().out
    assert layout.read_json(failed_sweep.result(run_id))["status"] == "FAILED"  # untouched


def test_a_completed_result_is_never_trained_over(failed_sweep: layout.SweepDir) -> None:
    run_id = _ids(failed_sweep)[0]
    layout.write_json(failed_sweep.result(run_id), {"run_id": run_id, "status": "COMPLETED"})
    assert worker.run_one(failed_sweep, run_id) == "COMPLETED"
    assert layout.read_json(failed_sweep.result(run_id)) == {"run_id": run_id, "status": "COMPLETED"}


def test_a_run_still_training_under_an_ended_job_is_running_and_not_resubmitted(
    failed_sweep: layout.SweepDir, fake: SlowFake
) -> None:
    """The orphan of a killed controller: its job has ended, its training process holds the run lock."""
    run_id = _ids(failed_sweep)[0]
    failed_sweep.result(run_id).unlink()
    release, thread = _hold_run_lock(failed_sweep, run_id)
    try:
        st = {r.run_id: r for r in status.gather(failed_sweep, _backend_for(fake)).runs}
        assert st[run_id].state == "RUNNING"
        assert "(its job has ended)" in st[run_id].note
        outcome = sweeps.resubmit(failed_sweep, "failed", _backend_for(fake))
        assert run_id not in outcome.to_submit and len(outcome.to_submit) == 2
    finally:
        release.set()
        thread.join()
    assert locks.holder(failed_sweep, run_id) is None


def test_a_failed_resubmission_leaves_every_result_in_place(failed_sweep: layout.SweepDir) -> None:
    refusing = backends.FakeBackend()

    def refuse(*args: Any) -> list[Submission]:
        raise backends.BackendError("sbatch refused the sweep: QOSMaxSubmitJobPerUserLimit")

    refusing.submit = refuse  # type: ignore[method-assign]
    with pytest.raises(backends.BackendError):
        sweeps.resubmit(failed_sweep, "failed", _backend_for(refusing))
    for run_id in _ids(failed_sweep):
        assert layout.read_json(failed_sweep.result(run_id))["status"] == "FAILED"
        assert not failed_sweep.previous_result(run_id).exists()


def test_a_worker_waits_for_the_command_that_submitted_it(failed_sweep: layout.SweepDir) -> None:
    done = threading.Event()
    with locks.sweep_lock(failed_sweep):
        thread = threading.Thread(target=lambda: (locks.wait_for_sweep(failed_sweep), done.set()))
        thread.start()
        assert not done.wait(0.3)
    assert done.wait(5)
    thread.join()


def test_process_identity_tells_a_reused_pid_apart() -> None:
    import os

    me = locks.process_start(os.getpid())
    assert me is not None and me.isdigit()
    assert locks.Holder(os.getpid(), me, __import__("socket").gethostname()).is_here()
    assert not locks.Holder(os.getpid(), str(int(me) + 1), __import__("socket").gethostname()).is_here()
