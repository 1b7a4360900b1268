"""`cancel` signals only what is provably the sweep's own (issue 22, case 3): a manifest others can write
is refused, a local process must be this sweep's submitit controller by its command line as well as by
pid, start time and host, and a Slurm job must be this user's and carry the sweep's job name in sacct."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcjobs import backends, layout, locks, manifest
from hpcjobs import sweep as sweeps
from hpcjobs.vocab import Submission

from .test_validation import hpcjobs, make_sweep


@pytest.fixture
def sweep(tmp_path: Path) -> layout.SweepDir:
    """The moons sweep with its first three runs unfinished: a job that still has work is cancelled."""
    sweep, ids = make_sweep(tmp_path)
    for run_id in ids[:3]:
        sweep.result(run_id).unlink()
    return sweep


def _name_jobs(sweep: layout.SweepDir, subs: list[Submission]) -> None:
    man = manifest.read(sweep)
    man.submissions = subs
    manifest.write(sweep, man)


@pytest.mark.parametrize("path", ["root", "manifest"])
def test_cancel_refuses_a_sweep_others_can_write(sweep: layout.SweepDir, path: str) -> None:
    target = sweep.root if path == "root" else sweep.manifest
    target.chmod(0o777 if path == "root" else 0o666)
    code, out, err = hpcjobs("cancel", str(sweep.root))
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert f"{target} is writable by other users" in err and "chmod go-w" in err


def _process(argv_tail: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv_tail])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("who", ["a stranger", "another sweep's controller", "this sweep's controller"])
def test_cancel_signals_a_live_process_only_if_it_is_this_sweeps_controller(
    sweep: layout.SweepDir, processes: list[subprocess.Popen[bytes]], who: str
) -> None:
    """Each process is named with its true pid, start time and host, as an edited manifest can."""
    folder = {
        "a stranger": "",
        "another sweep's controller": str(sweep.root.parent / "other" / "submitit"),
        "this sweep's controller": str(sweep.submitit_dir.absolute()),
    }[who]
    proc = _process(["-m", "submitit.local._local", folder] if folder else [])  # as submitit starts it
    processes.append(proc)
    start = locks.process_start(proc.pid)
    assert start is not None
    run_id = manifest.read(sweep).run_ids[0]
    _name_jobs(sweep, [Submission("local", str(proc.pid), [[run_id]], 1, "", start, socket.gethostname())])
    cancelled = sweeps.cancel(sweep, lambda executor: backends.LocalBackend())
    ours = who == "this sweep's controller"
    assert cancelled == ([str(proc.pid)] if ours else [])
    if ours:
        assert proc.wait(timeout=20) != 0  # the SIGINT ended it
    else:
        assert proc.poll() is None


def test_cancel_asks_sacct_and_scancels_only_this_users_jobs_of_this_sweep(
    sweep: layout.SweepDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    ids = manifest.read(sweep).run_ids
    _name_jobs(
        sweep,
        [
            Submission("slurm", job, [[run_id]])
            for job, run_id in zip(["11", "12", "13"], ids[:3], strict=True)
        ],
    )
    owners = f"11|{me}|hpcjobs-moons\n12|mallory|hpcjobs-moons\n13|{me}|someone-elses-job\n"
    calls: list[list[str]] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        answer = {
            "sacct": owners
            if "--format=JobID,User,JobName" in cmd
            else "11|RUNNING|0:0|00:01:00\n12|RUNNING|0:0|00:01:00\n13|RUNNING|0:0|00:01:00\n",
            "squeue": "" if "%i" in cmd else None,  # the owners' query: as if it failed
            "scancel": "",
        }[cmd[0]]
        return subprocess.CompletedProcess(cmd, 0 if answer is not None else 1, answer or "", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert sweeps.cancel(sweep, lambda executor: backends.SlurmBackend()) == ["11"]
    assert [c for c in calls if c[0] == "scancel"] == [["scancel", "11"]]
