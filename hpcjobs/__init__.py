"""hpcjobs: sweeps of Keras MLP trainings on a Slurm GPU cluster — submit, monitor, collect.

The public API is small on purpose; the CLI is a thin layer over these names. Importing it stays light
(no TensorFlow, Keras or pandas): login nodes import it for `status`.
"""

from .backends import FakeBackend, LocalBackend, SlurmBackend
from .layout import LayoutError, SweepDir, sweep_dir
from .scheduler import BackendError
from .spec import Run, Spec, SpecError, expand, load_spec, parse_spec
from .status import SweepStatus, gather
from .sweep import SweepError, cancel, export_sbatch, resubmit, submit

__all__ = [
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
__version__ = "0.1.0"
