"""Two hpcjobs commands at once against the lab cluster (slurm/start.sh): each run is submitted once and
every submission is recorded, so `cancel` reaches all of them. Jobs are held (--hold), so nothing trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcjobs import layout, manifest

from .conftest import REPO
from .test_slurm_lab import lab, wait_done, write_sweep

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("lab_slurm")]


def _both(*args: str) -> list[tuple[int, str]]:
    """The same hpcjobs command started twice at once, as two shells would."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hpcjobs", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


def _arrays_queued(name: str) -> set[str]:
    """The arrays the controller holds under the sweep's job name (squeue: accounting may lag)."""
    out = subprocess.run(
        ["squeue", "-h", "-r", f"--name=hpcjobs-{name}", "-o", "%F"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def _submitted(sweep: layout.SweepDir) -> list[str]:
    return [r for s in manifest.read(sweep).submissions for task in s.tasks for r in task]


def test_two_first_submits_then_two_resubmits_at_once_submit_each_run_once(tmp_path: Path) -> None:
    name = f"race-{os.getpid()}"
    path = write_sweep(tmp_path, name, hidden="[[4], [8], [16]]", additional='["--hold"]')
    results = str(tmp_path / "r")

    outputs = _both("submit", str(path), "--executor", "slurm", "--results", results)
    sweep = layout.sweep_dir(name, results)
    try:
        assert sorted(code for code, _ in outputs) in ([0, 0], [0, 1]), outputs
        assert sum("submitted 3 runs" in out for _, out in outputs) == 1, outputs
        assert sorted(_submitted(sweep)) == sorted(manifest.read(sweep).run_ids)
        assert _arrays_queued(name) == {s.job_id for s in manifest.read(sweep).submissions}

        assert (
            subprocess.run([sys.executable, "-m", "hpcjobs", "cancel", name, "--results", results]).returncode
            == 0
        )
        assert wait_done(sweep, timeout=60).counts == {"CANCELLED": 3}

        outputs = _both("resubmit", name, "--failed", "--results", results)
        assert sum("resubmitted 3 runs" in out for _, out in outputs) == 1, outputs
        other = next(out for _, out in outputs if "resubmitted 3 runs" not in out)
        assert other.strip() in (f"{name}: nothing to resubmit",) or "is busy" in other, outputs
        assert len(_submitted(sweep)) == 6  # each run once per attempt
        # Every array the cluster holds is in the manifest, so cancel reaches all of them.
        assert _arrays_queued(name) == {manifest.read(sweep).submissions[-1].job_id}
    finally:
        subprocess.run([sys.executable, "-m", "hpcjobs", "cancel", name, "--results", results], check=False)


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "hpcjobs", *args], env=env, capture_output=True, text=True)


def test_status_with_the_controller_down_and_accounting_up_warns_and_exits_1(tmp_path: Path) -> None:
    name = f"down-{os.getpid()}"
    path = write_sweep(tmp_path, name, additional='["--hold"]')
    results = str(tmp_path / "r")
    assert _command("submit", str(path), "--executor", "slurm", "--results", results).returncode == 0
    try:
        for _ in range(60):  # until accounting lists the held job
            if '"PENDING"' in _command("status", name, "--results", results, "--json").stdout:
                break
        lab("stop-controller.sh")
        try:
            status = _command("status", name, "--results", results)
        finally:
            lab("start.sh")
        assert status.returncode == 1, status
        assert "Slurm unreachable: the controller does not answer" in status.stdout + status.stderr
    finally:
        _command("cancel", name, "--results", results)
