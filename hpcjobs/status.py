"""Status of a sweep: scheduler states merged with what the runs wrote to disk.

Runs on login nodes, often: no pandas, TensorFlow or Keras here, and one scheduler call per refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import history, layout, locks, manifest, search
from .history import Progress
from .results import read as read_result
from .scheduler import Backend
from .slurm import JobRow
from .sweepstatus import RunStatus, SweepStatus
from .vocab import ACTIVE, FINISHED, OOM_HINT, Objective, RunState, Submission


def run_state(
    result: dict[str, Any] | None,
    row: JobRow | None,
    submitted: bool,
    progress: Progress,
    trainer: locks.Holder | None = None,
) -> tuple[str, str]:
    """(state, note) for one run. Pure: the whole decision table lives here."""
    if trainer is not None and (result is None or result.get("status") not in FINISHED):
        # A process holds the run's lock: it trains the run, whatever became of the job that started it.
        ended = row is not None and row.state not in ACTIVE
        if ended or not submitted:
            where = f"process {trainer.pid} on {trainer.host}" if trainer.pid else "another process"
            return RunState.RUNNING, f"trained by {where}" + (" (its job has ended)" if ended else "")
        return RunState.RUNNING, ""
    if result is not None:
        notes = [
            result.get("error"),
            result.get("hint"),
            f"traceback: {result['traceback']}" if result.get("traceback") else None,
        ]
        return str(result.get("status", RunState.FAILED)), " — ".join(str(n) for n in notes if n)
    if not submitted:
        if progress.epochs_done:
            return RunState.RUNNING, "submitted outside hpcjobs (export-sbatch): state read from its files"
        return RunState.NOT_SUBMITTED, ""
    if row is None:
        return RunState.SUBMITTED, "not yet known to the scheduler"
    if row.state == RunState.RUNNING:
        # A task trains its runs in turn, each under its run lock: one no process holds is still waiting.
        if progress.epochs_done:
            return RunState.RUNNING, ""
        return RunState.PENDING, "waiting for a process of its task"
    if row.state in ACTIVE:
        return row.state, row.reason if row.reason not in ("None", "") else ""
    if row.state in (RunState.COMPLETED, "ENDED"):
        return RunState.FAILED, "the task ended without writing this run's result"
    if row.state == RunState.OUT_OF_MEMORY:
        return row.state, OOM_HINT
    return row.state, ""


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def _read_progress(sweep: layout.SweepDir, run_id: str) -> tuple[Progress, str]:
    """The run's progress, and what is wrong with its history ('' if nothing)."""
    path = sweep.history(run_id)
    try:
        return history.progress(path.read_text()), ""
    except FileNotFoundError:
        return Progress(), ""
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return Progress(), f"{path}: unreadable ({exc})"


def elapsed(result: dict[str, Any] | None, row: JobRow | None, state: str) -> str:
    """The run's own time where its result says it, else its task's (a task may train several runs)."""
    if result and result.get("started") and result.get("finished"):
        seconds = round(
            (
                dt.datetime.fromisoformat(result["finished"]) - dt.datetime.fromisoformat(result["started"])
            ).total_seconds()
        )
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"  # as sacct prints it
    if state == RunState.PENDING or row is None:
        return ""
    return row.elapsed


def gather(sweep: layout.SweepDir, backend_for: Callable[[str], Backend]) -> SweepStatus:
    """One scheduler call per executor in the manifest (in practice one), then the run folders."""
    man = manifest.read(sweep)
    latest = man.latest_job()
    by_executor: dict[str, list[Submission]] = {}
    for submission in man.submissions:
        by_executor.setdefault(submission.executor, []).append(submission)
    states: dict[tuple[str, int], JobRow] = {}
    warnings = []
    for executor, subs in by_executor.items():
        found, warning = backend_for(executor).states(subs)
        states.update(found)
        if warning:
            warnings.append(warning)

    results, problems = {}, []
    for run_id in man.run_ids:
        results[run_id], why = read_result(sweep.result(run_id))
        if why:
            problems.append(f"{sweep.result(run_id)}: unreadable ({why})")
    plan = search.read(sweep)
    rung_of = plan.rung_of() if plan else {}
    out = []
    for run in man.runs:
        run_id = run.run_id
        result = results[run_id]
        progress, why = _read_progress(sweep, run_id)
        if why:
            problems.append(why)
        sub, task = latest.get(run_id, (None, 0))
        row = states.get((sub.job_id, task)) if sub else None
        trainer = (
            locks.holder(sweep, run_id) if result is None or result.get("status") not in FINISHED else None
        )
        state, note = run_state(result, row, sub is not None, progress, trainer)
        if state not in FINISHED and not note and sub is not None and state not in ACTIVE:
            note = _last_line(sweep.job_log(sub.job_name(task)))
        objective = Objective.logged_in(progress.last)
        metric = objective.name if objective else ""
        rung = rung_of.get(run_id)
        out.append(
            RunStatus(
                run_id,
                run.config_id,
                run.seed,
                state,
                progress.epochs_done,
                run.settings.train.epochs if plan is None or rung is None else plan.epochs[rung],
                metric,
                progress.last.get(metric),
                elapsed(result, row, state),
                sub.job_name(task) if sub else "",
                note,
                "" if plan is None or rung is None else f"{rung + 1}/{len(plan.epochs)}",
            )
        )
    return SweepStatus(man.name, out, "; ".join(warnings), problems, search.where(plan) if plan else "")
