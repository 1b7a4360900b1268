"""Submitting, resubmitting and cancelling a sweep: spec + results folder + backend.

The order of operations is the point: validate everything, reach the scheduler, and only then write;
a failed first submission removes the folder it created.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import layout, manifest, slurm, status
from .backends import Backend, BackendError
from .manifest import Manifest, Submission
from .spec import DATASETS, Run, Spec, SpecError, data_sources, expand, load_spec

# Ended without a result. SUBMITTED is not here: a job sacct does not list yet is in flight, not lost.
RETRYABLE = (
    "FAILED",
    "OUT_OF_MEMORY",
    "TIMEOUT",
    "NODE_FAIL",
    "CANCELLED",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
)


class SweepError(Exception):
    """A sweep that cannot be submitted as asked; the message is one line for the user."""


@dataclass
class Outcome:
    sweep: layout.SweepDir
    runs: list[Run]
    to_submit: list[str]
    tasks: list[list[str]] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # sbatch text, for --dry-run on Slurm


def check_data(spec: Spec) -> None:
    """A user's data file is read on the login node before anything is submitted."""
    from .data import DataError, check_labels, load

    for source in data_sources(spec):
        if source in DATASETS:
            continue
        try:
            _, y = load(source)
            check_labels(y, source)
        except DataError as exc:
            raise SweepError(str(exc)) from None


def check_private(path: Path) -> None:
    """submitit executes the pickles in a sweep folder: refuse one that other users can write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SweepError(
            f"{path} is writable by other users (mode {stat.filemode(mode)}): expected a folder "
            f"only you can write (chmod go-w '{path}')"
        )


def _existing(sweep: layout.SweepDir, spec: Spec, runs: list[Run]) -> Manifest | None:
    """The sweep's manifest if this exact sweep was submitted before; None if the folder is new."""
    if sweep.root.exists() and not sweep.root.is_dir():
        raise SweepError(f"{sweep.root} is a file: expected a results folder (use --results to pick another)")
    if not sweep.root.exists():
        return None
    if not sweep.exists():
        raise SweepError(
            f"{sweep.root} exists but was not made by hpcjobs: expected a new sweep name "
            f"or a different --results folder"
        )
    check_private(sweep.root)
    old = manifest.read(sweep)
    new = Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    if (old.backend, old.runs) != (new.backend, new.runs):
        raise SweepError(
            f"{sweep.root} holds sweep '{old.name}' with different settings: expected the same "
            f"sweep file to continue it, or a new name"
        )
    return old


def select(states: dict[str, str], mode: str) -> list[str]:
    """Runs to submit again: `failed` ones, or `unfinished` (failed + never submitted). Pure."""
    wanted = RETRYABLE if mode == "failed" else (*RETRYABLE, "NOT_SUBMITTED")
    return [run_id for run_id, state in states.items() if state in wanted]


def _set_aside(sweep: layout.SweepDir, run_ids: list[str]) -> None:
    """A failed attempt's result would hide the new attempt: keep it beside, never delete it."""
    for run_id in run_ids:
        old = sweep.result(run_id)
        if old.is_file():
            old.replace(sweep.previous_result(run_id))


def _prepare(
    sweep_file: Path, results: str | Path | None
) -> tuple[Spec, list[Run], layout.SweepDir, Manifest | None]:
    """Everything that can be checked before a byte is written."""
    spec = load_spec(sweep_file)
    runs = expand(spec)
    check_data(spec)
    root = layout.results_root(results)
    if root.exists() and not root.is_dir():
        raise SweepError(f"--results {root} is a file: expected a folder")
    sweep = layout.SweepDir(root / spec.name)
    return spec, runs, sweep, _existing(sweep, spec, runs)


def _write_new(sweep: layout.SweepDir, spec: Spec, runs: list[Run], sweep_file: Path) -> Manifest:
    layout.make_private_dir(sweep.root)
    layout.write_text(sweep.sweep_file, sweep_file.read_text())
    for run in runs:
        layout.write_json(sweep.config(run.run_id), run.config(spec.name, spec.backend))
    man = Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    manifest.write(sweep, man)
    return man


def submit(
    sweep_file: Path,
    results: str | Path | None,
    backend: Backend,
    backend_for: Callable[[str], Backend],
    dry_run: bool = False,
) -> Outcome:
    spec, runs, sweep, old = _prepare(sweep_file, results)
    if old is None:
        todo = [r.run_id for r in runs]
    else:
        todo = select({r.run_id: r.state for r in status.gather(sweep, backend_for).runs}, "unfinished")
    outcome = Outcome(sweep, runs, todo, backend.group(todo))
    if dry_run:
        outcome.scripts = backend.scripts(sweep, outcome.tasks, spec.slurm)
        return outcome
    if not todo:
        return outcome
    backend.check()
    try:
        man = old or _write_new(sweep, spec, runs, sweep_file)
        _set_aside(sweep, todo)
        outcome.submissions = backend.submit(sweep, outcome.tasks, spec.slurm)
    except BaseException:
        if old is None:
            shutil.rmtree(sweep.root, ignore_errors=True)
        raise
    man.submissions.extend(outcome.submissions)
    manifest.write(sweep, man)
    return outcome


def export_sbatch(sweep_file: Path, results: str | Path | None, python: str) -> Path:
    """Write the sweep folder and a plain sbatch array script for users who submit by hand."""
    spec, runs, sweep, old = _prepare(sweep_file, results)
    if old is None:
        _write_new(sweep, spec, runs, sweep_file)
    script = slurm.export_script(
        str(sweep.root.resolve()), spec.slurm, f"hpcjobs-{spec.name}", len(runs), python
    )
    layout.write_text(sweep.export_script, script)
    sweep.export_script.chmod(0o700)
    return sweep.export_script


def resubmit(
    sweep: layout.SweepDir, mode: str, backend_for: Callable[[str], Backend], executor: str | None = None
) -> Outcome:
    """Submit again only the runs that need it: `failed`, or `unfinished` (failed + never submitted)."""
    check_private(sweep.root)
    man = manifest.read(sweep)
    states = {r.run_id: r.state for r in status.gather(sweep, backend_for).runs}
    last = man.submissions[-1].executor if man.submissions else "auto"
    backend = backend_for(executor or last)
    backend.check()
    todo = select(states, mode)
    _set_aside(sweep, todo)
    outcome = Outcome(sweep, [], todo, backend.group(todo))
    if todo:
        outcome.submissions = backend.submit(sweep, outcome.tasks, man.slurm)
        man.submissions.extend(outcome.submissions)
        manifest.write(sweep, man)
    return outcome


def run_at(sweep: layout.SweepDir, index: int) -> str:
    """The run id of an array task of an exported script."""
    ids = manifest.read(sweep).run_ids
    if not 0 <= index < len(ids):
        raise SweepError(
            f"--index {index} is out of range: expected 0..{len(ids) - 1} for sweep {sweep.name}"
        )
    return ids[index]


def cancel(sweep: layout.SweepDir, backend_for: Callable[[str], Backend]) -> list[str]:
    """Cancel every job of the sweep that still has work; returns their job ids."""
    man = manifest.read(sweep)
    st = status.gather(sweep, backend_for)
    busy = {r.run_id for r in st.runs if r.state not in status.FINISHED and r.state not in RETRYABLE}
    cancelled: list[str] = []
    for executor in {s.executor for s in man.submissions}:
        subs = [
            s
            for s in man.submissions
            if s.executor == executor and any(r in busy for task in s.tasks for r in task)
        ]
        backend_for(executor).cancel(subs)
        cancelled.extend(s.job_id for s in subs)
    return cancelled


__all__ = ["BackendError", "SpecError", "SweepError", "cancel", "resubmit", "submit"]
