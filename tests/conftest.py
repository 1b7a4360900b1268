"""Shared fixtures: seeded randomness, and the lab Slurm cluster for tests marked `slurm`."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hpcjobs.settings import SlurmSettings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = "HPCJOBS_REGEN_GOLDEN"
# A [slurm] table as submit records it, packing resolved: a task per run.
PACKED = SlurmSettings(trials_per_gpu=1, runs_per_task=1)


def assert_golden(text: str, name: str) -> None:
    """Compare generated text with tests/golden/NAME; HPCJOBS_REGEN_GOLDEN=1 re-records it."""
    path = GOLDEN / name
    how = f"re-record with: {REGEN}=1 pytest tests/ -k golden, then review the diff"
    if os.environ.get(REGEN) == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        pytest.skip(f"re-recorded {path} ({how})")
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        pytest.fail(f"{path} was missing: recorded it now, review and commit it ({how})")
    assert text == path.read_text(), f"{name} differs from {path}; if intended, {how}"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    random.seed(0)
    np.random.seed(0)


def _slurm_problem() -> str:
    """Why the lab cluster cannot be used here, or '' when it answers."""
    if shutil.which("sinfo") is None:
        return "Slurm client tools not installed (run slurm/install.sh as root)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if proc.returncode != 0:
        return f"slurmctld not reachable: {proc.stderr.strip()} (start it with: sudo slurm/start.sh)"
    return ""


@pytest.fixture(scope="session")
def lab_slurm() -> None:
    """The lab cluster of slurm/start.sh: skipped with the reason where it is not up, unless CI needs it."""
    problem = _slurm_problem()
    if problem:
        if os.environ.get("HPCJOBS_REQUIRE_SLURM"):
            pytest.fail(f"HPCJOBS_REQUIRE_SLURM is set but {problem}")
        pytest.skip(problem)
