"""What a command does around the jobs it submits, the same for `submit`, `resubmit` and `promote`: it
refuses a sweep folder that others could write (submitit executes the pickles in it), records the jobs in
the manifest (cancelling them where it cannot), and joins them to a halving search's current rung with a
dependent job that promotes it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import layout, manifest, search
from .manifest import Manifest
from .scheduler import Backend, BackendError
from .settings import SlurmSettings
from .vocab import InputError, Submission


class SweepError(InputError):
    """A sweep that cannot be submitted as asked; the message is one line for the user."""


def check_private(path: Path) -> None:
    """submitit executes the pickles in a sweep folder: refuse one that others own or can write."""
    info = path.stat()
    if info.st_uid != os.getuid():
        raise SweepError(
            f"{path} belongs to another user (uid {info.st_uid}): expected a sweep folder of yours "
            f"(pick another name or --results folder)"
        )
    mode = info.st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SweepError(
            f"{path} is writable by other users (mode {stat.filemode(mode)}): expected a folder "
            f"only you can write (chmod go-w '{path}')"
        )


def record(sweep: layout.SweepDir, man: Manifest, backend: Backend, subs: list[Submission]) -> None:
    """Add the new jobs to the manifest; if it cannot be written (a full disk), cancel them: jobs the
    manifest does not name could never be watched, resubmitted or cancelled by hpcjobs."""
    man.submissions.extend(subs)
    try:
        manifest.write(sweep, man)
    except OSError:
        backend.cancel(subs)
        raise


def follow_search(
    sweep: layout.SweepDir, backend: Backend, subs: list[Submission], settings: SlurmSettings
) -> str:
    """A halving search's arrays join its current rung, and a dependent job promotes it when they end.
    A follow-up the scheduler refuses is a warning, not an error: the arrays are submitted and recorded."""
    state = search.read(sweep)
    if state is None or not subs:
        return ""
    jobs = [s.job_id for s in subs]
    state.rungs[-1].jobs.extend(jobs)
    search.write(sweep, state)  # first: a rung with jobs is never submitted again, whatever happens next
    try:
        follower = backend.follow_up(sweep, jobs, settings)
    except BackendError as exc:
        then = f"run `hpcjobs promote {sweep.name}` when jobs {', '.join(jobs)} end"
        return f"{exc}: no job will promote the search; {then}"
    if follower:
        state.rungs[-1].promote_jobs.append(follower)
        search.write(sweep, state)
    return ""
