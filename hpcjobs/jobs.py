"""What a command does around the jobs it submits, the same for `submit`, `resubmit` and `promote`: it
refuses a sweep folder that others could write (submitit executes the pickles in it), records each job in
the manifest as the scheduler returns it (cancelling them all when the command fails half-way), and joins
them to a halving search's current rung with a dependent job that promotes it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from . import layout, manifest, search
from .manifest import Manifest
from .scheduler import Backend, BackendError
from .settings import SlurmSettings
from .vocab import InputError, Submission


class SweepError(InputError):
    """A sweep that cannot be submitted as asked; the message is one line for the user."""


def check_private(path: Path) -> None:
    """submitit executes the pickles in a sweep folder, and `cancel` signals the jobs its manifest names:
    refuse a folder (or manifest) that others own or can write."""
    info = path.stat()
    what = "folder" if stat.S_ISDIR(info.st_mode) else "file"
    if info.st_uid != os.getuid():
        raise SweepError(
            f"{path} belongs to another user (uid {info.st_uid}): expected a sweep {what} of yours "
            f"(pick another name or --results folder)"
        )
    mode = info.st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SweepError(
            f"{path} is writable by other users (mode {stat.filemode(mode)}): expected a {what} "
            f"only you can write (chmod go-w '{path}')"
        )


def submit_recorded(
    sweep: layout.SweepDir, man: Manifest, backend: Backend, tasks: list[list[str]], settings: SlurmSettings
) -> list[Submission]:
    """Submit the tasks and record each job in the manifest the moment the scheduler returns it, so that
    no job of hpcjobs is ever known to no manifest. When one fails (sbatch refuses the 10th array, a full
    disk), the jobs this command submitted before it are cancelled and taken out of the manifest again;
    where they cannot be cancelled they stay recorded, for `hpcjobs cancel` to reach. Either way the error
    says which."""
    before = list(man.submissions)
    subs: list[Submission] = []
    recorded = 0
    try:
        for sub in backend.submit(sweep, tasks, settings):
            subs.append(sub)
            man.submissions.append(sub)
            manifest.write(sweep, man)
            recorded += 1
    except BaseException as exc:
        if not subs:
            raise
        kept = _withdraw(sweep, man, backend, subs, before)
        if not recorded and not kept:  # the first job, unrecorded and cancelled: as if never submitted
            raise
        noun = "worker" if backend.name == "local" else "array"
        ids = [s.job_id for s in subs]
        message = partial_failure(sweep.name, noun, ids, recorded + 1, _reason(exc), kept)
        if not isinstance(exc, Exception):  # Ctrl-C: still stop, having said what became of the jobs
            print(f"hpcjobs: {message}", file=sys.stderr)
            raise
        raise BackendError(message) from None
    return subs


def _withdraw(
    sweep: layout.SweepDir, man: Manifest, backend: Backend, subs: list[Submission], before: list[Submission]
) -> str:
    """Cancel the jobs a failed command submitted and unrecord them; why they stay recorded, '' if not."""
    try:
        backend.cancel(subs)
    except BackendError as exc:
        return str(exc)
    man.submissions = before
    with contextlib.suppress(OSError):  # a manifest naming cancelled jobs misleads no command
        manifest.write(sweep, man)
    return ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def partial_failure(name: str, noun: str, jobs: list[str], failed: int, reason: str, kept: str) -> str:
    """One line for a submission that failed after its first job (`failed` counts from 1): what became of
    the jobs it had submitted. Pure."""
    ids = ", ".join(jobs)
    if not kept:
        return f"submitted {noun}s {ids} were cancelled because {noun} {failed} failed: {reason}"
    return (
        f"{noun} {failed} failed ({reason}) and cancelling {noun}s {ids} failed too ({kept}): they stay "
        f"recorded; stop them with `hpcjobs cancel {name}`, or submit the rest with "
        f"`hpcjobs resubmit {name} --unfinished`"
    )


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
