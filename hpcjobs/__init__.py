"""hpcjobs: sweeps of Keras MLP trainings on a Slurm GPU cluster — submit, monitor, collect.

The public API is small on purpose; the CLI is a thin layer over these names.
"""

from .layout import SweepDir, sweep_dir
from .spec import Run, Spec, SpecError, expand, load_spec, parse_spec

__all__ = ["Run", "Spec", "SpecError", "SweepDir", "expand", "load_spec", "parse_spec", "sweep_dir"]
__version__ = "0.1.0"
