"""Local jobs are known by pid, start time and machine: a pid the system gave to another process is
neither shown as our job nor sent signals by `cancel`."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcjobs import backends, locks
from hpcjobs.vocab import Submission


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not ours, standing on a pid a manifest names."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _sub(pid: int, start: str, host: str) -> Submission:
    return Submission("local", str(pid), [["r"]], process_start=start, host=host)


def test_a_reused_pid_is_not_our_job_and_cancel_leaves_it_alone(stranger: subprocess.Popen[bytes]) -> None:
    real = locks.process_start(stranger.pid)
    assert real is not None
    local = backends.LocalBackend()
    ours = _sub(stranger.pid, real, socket.gethostname())
    reused = _sub(stranger.pid, str(int(real) - 1), socket.gethostname())
    elsewhere = _sub(stranger.pid, real, "another-login-node")
    assert local.states([ours])[0][str(stranger.pid), 0].state == "RUNNING"
    assert local.states([reused])[0][str(stranger.pid), 0].state == "ENDED"
    assert local.states([elsewhere])[0][str(stranger.pid), 0].state == "ENDED"
    local.cancel([reused, elsewhere])
    assert stranger.poll() is None  # no SIGINT reached it
    local.cancel([ours])
    assert stranger.wait(timeout=10) != 0


def test_a_local_controller_runs_in_its_own_session_with_the_extra_environment() -> None:
    import os

    with backends._controllers_in_own_session({"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}):
        from submitit.local import local

        proc = local.subprocess.Popen(  # type: ignore[attr-defined]
            ["sh", "-c", 'test "$XLA_PYTHON_CLIENT_PREALLOCATE" = false && test "$KEPT" = 1'],
            env={**os.environ, "KEPT": "1"},
        )
    assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    assert proc.wait() == 0
    assert local.subprocess is subprocess  # type: ignore[attr-defined]


def test_cancel_stops_the_trainer_a_killed_controller_left_behind(tmp_path: Path) -> None:
    """The controller (a pid no longer alive) is gone; the process holding the run lock is proven to be
    that very process, a task of this sweep by its command line, and gets the SIGINT that cancel sends;
    nothing else does, and the dead controller is not listed as cancelled."""
    import sys

    from hpcjobs import layout, manifest
    from hpcjobs import sweep as sweeps

    from .conftest import REPO
    from .test_validation import make_sweep

    sweep, ids = make_sweep(tmp_path)
    sweep.result(ids[0]).unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()
    man = manifest.read(sweep)
    man.submissions = [_sub(dead.pid, "1", socket.gethostname())]
    man.submissions[0].tasks[0][0] = ids[0]
    manifest.write(sweep, man)
    hold = (
        "import sys, time; from pathlib import Path; from hpcjobs import layout, locks\n"
        "with locks.run_lock(layout.SweepDir(Path(sys.argv[1])), sys.argv[2]):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    as_submitit = ["-m", locks.TRAINER, str(sweep.submitit_dir.absolute())]  # what _submit's argv shows
    trainer = subprocess.Popen(
        [sys.executable, "-c", hold, str(sweep.root), ids[0], *as_submitit], env=env, stdout=subprocess.PIPE
    )
    try:
        assert trainer.stdout is not None and trainer.stdout.readline() == b"held\n"
        cancelled = sweeps.cancel(sweep, lambda executor: backends.LocalBackend())
        assert cancelled == [f"{trainer.pid} (trainer of {ids[0]})"]
        assert trainer.wait(timeout=20) != 0  # KeyboardInterrupt
    finally:
        trainer.kill()
        trainer.wait()
        if trainer.stdout:
            trainer.stdout.close()
    assert layout.read_json(sweep.result(ids[1]))["status"] == "COMPLETED"
