"""The public API: the names `import hpcjobs` offers, pinned, and light to import."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import hpcjobs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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


def test_submitit_leaves_the_streams_and_logging_of_the_process_alone(tmp_path: Path) -> None:
    """submitit's first import reconfigures logging, closing every handler there is; absl's, made with
    TensorFlow or Keras, then closed the stream that stood in sys.stderr when it was made (pytest's capture:
    a later test failed with "lost sys.stderr" as soon as a command, run by CliRunner, imported submitit)."""
    code = (
        "import io, logging, os, sys\n"
        "from pathlib import Path\n"
        "captured, sys.stderr = sys.stderr, io.StringIO()  # a capture, as Keras is imported\n"
        "import absl.logging  # its handler keeps the stream of that moment\n"
        "kept, sys.stderr = sys.stderr, captured  # a command's own stream stands in while it runs\n"
        "ours = logging.StreamHandler(io.StringIO())\n"
        "logging.getLogger().addHandler(ours)\n"
        "from hpcjobs.layout import SweepDir\n"
        f"SweepDir(Path({str(tmp_path)!r})).job_log('1')  # reads a log: hpcjobs imports submitit\n"
        "assert 'submitit' in sys.modules\n"
        "assert not kept.closed, 'a stream closed under its owner'\n"
        "assert ours in logging.getLogger().handlers and ours in [r() for r in logging._handlerList]\n"
        "assert 'SUBMITIT_LOG_LEVEL' not in os.environ, 'the jobs it starts would not log'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_no_two_extras_put_two_tensorflows_into_one_environment() -> None:
    """tensorflow and tensorflow-cpu share one folder: [tf] or [cpu], and nothing else brings either."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    tf_of = {
        name: {re.split(r"[<>=!~\[; ]", req)[0] for req in reqs if req.startswith("tensorflow")}
        for name, reqs in extras.items()
    }
    assert (tf_of["tf"], tf_of["cpu"]) == ({"tensorflow"}, {"tensorflow-cpu"})
    for a, b in itertools.combinations(extras, 2):
        if {a, b} != {"tf", "cpu"}:
            assert len(tf_of[a] | tf_of[b]) <= 1, (a, b)
