"""The public API: the names `import hpcjobs` offers, pinned, and light to import."""

from __future__ import annotations

import subprocess
import sys

import hpcjobs


def test_public_names_are_pinned() -> None:
    assert hpcjobs.__all__ == [
        "BackendError",
        "FakeBackend",
        "LayoutError",
        "LocalBackend",
        "Run",
        "SlurmBackend",
        "Spec",
        "SpecError",
        "SweepDir",
        "SweepError",
        "SweepStatus",
        "cancel",
        "expand",
        "export_sbatch",
        "gather",
        "load_spec",
        "parse_spec",
        "resubmit",
        "submit",
        "sweep_dir",
    ]
    assert all(hasattr(hpcjobs, name) for name in hpcjobs.__all__)


def test_importing_the_package_loads_no_framework_and_no_pandas() -> None:
    code = (
        "import sys, hpcjobs\n"
        "heavy = {'tensorflow', 'keras', 'jax', 'torch', 'pandas', 'submitit'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
