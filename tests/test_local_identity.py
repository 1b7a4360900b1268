"""Local jobs are known by pid, start time and machine: a pid the system gave to another process is
neither shown as our job nor sent signals by `cancel`."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from hpcjobs import backends, locks
from hpcjobs.manifest import Submission


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


def test_a_local_controller_runs_in_its_own_session() -> None:
    import os

    with backends._controllers_in_own_session():
        from submitit.local import local

        proc = local.subprocess.Popen(["sleep", "0.1"])  # type: ignore[attr-defined]
    assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    proc.wait()
    assert local.subprocess is subprocess  # type: ignore[attr-defined]
