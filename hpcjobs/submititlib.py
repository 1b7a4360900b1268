"""submitit as hpcjobs uses it, imported without letting it set up this process's logging. Every module
takes submitit from here, and only when it needs it, so that `import hpcjobs` stays light.

On its first import submitit calls logging.config.dictConfig, which first closes every handler the process
has. absl's handler, made when TensorFlow or Keras is imported, keeps the sys.stderr of that moment and,
closed while another stream stands in sys.stderr, closes its own: a stream that pytest's capture, click's
CliRunner or a notebook cell had swapped in was closed under them, and their next write failed ("I/O
operation on closed file", then "lost sys.stderr"). SUBMITIT_LOG_LEVEL=NOCONFIG is submitit's switch for
it, set for this import only: the jobs submitit starts still log as it configures them, and a level the user
set is applied as before. In this process submitit's records go to the application's handlers, if any
(without, Python prints the warnings on stderr).
"""

from __future__ import annotations

import os

_SWITCH = "SUBMITIT_LOG_LEVEL"
_users = _SWITCH in os.environ
os.environ.setdefault(_SWITCH, "NOCONFIG")
try:
    import submitit
    from submitit.core.utils import JobPaths
    from submitit.local import local
    from submitit.slurm.slurm import _make_sbatch_string
finally:
    if not _users:
        del os.environ[_SWITCH]

__all__ = ["JobPaths", "_make_sbatch_string", "local", "submitit"]
