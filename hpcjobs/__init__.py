"""hpcjobs: sweeps of Keras MLP trainings on a Slurm GPU cluster — submit, monitor, collect.

The public API is small on purpose; the CLI is a thin layer over these names. Importing it stays light
(no TensorFlow, Keras or pandas): login nodes import it for `status`.
"""

from .backends import FakeBackend, LocalBackend, SlurmBackend
from .jobs import SweepError
from .layout import LayoutError, SweepDir, sweep_dir
from .scheduler import BackendError
from .settings import Run
from .spec import Spec, SpecError, expand, load_spec, parse_spec
from .status import gather
from .sweep import cancel, export_sbatch, resubmit, submit
from .sweepstatus import SweepStatus

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
