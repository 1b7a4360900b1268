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

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

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

__all__ = ["JobPaths", "_make_sbatch_string", "local", "submitit", "submitting"]


# The files submitit writes for a submission before it has a job id: a pickle per task, the sbatch script.
_UNSUBMITTED = re.compile(r"[0-9a-f]{32}\.pkl|\.submission_file_[0-9a-f]{32}\.sh")


@contextlib.contextmanager
def submitting(folder: Path) -> Iterator[None]:
    """One call of submitit's executor that leaves nothing of itself when it fails: the pickles and script
    that it wrote for the submission go (a full disk left them empty), an OSError names the file it could not
    write (submitit's pickle raises it on close, without a name), and what it printed of sbatch's stderr is
    dropped (the error carries its last line)."""
    before = _files(folder)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            yield
    except BaseException as exc:
        left = [p for p in _files(folder) - before if _UNSUBMITTED.fullmatch(p.name)]
        last = max(left, key=lambda p: p.stat().st_mtime_ns, default=folder)
        for path in left:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(last)) from None
        raise
    sys.stderr.write(printed.getvalue())


def _files(folder: Path) -> set[Path]:
    return set(folder.iterdir()) if folder.is_dir() else set()
