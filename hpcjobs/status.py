"""Status of a sweep: scheduler states merged with what the runs wrote to disk.

Runs on login nodes, often: no pandas, TensorFlow or Keras here, and one scheduler call per refresh.
"""

from __future__ import annotations

import datetime as dt
import time
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

LOG_TAIL_BYTES = 64 * 2**10  # a job log's last line is in its end: never read a long log whole


def run_state(
    result: dict[str, Any] | None,
    row: JobRow | None,
    submitted: bool,
    progress: Progress,
    trainer: locks.Holder | None = None,
    exported: bool = False,
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
        if exported:  # its array task has not started, or sbatch was not run yet: still to come either way
            return RunState.PENDING, "exported (sbatch.sh): waiting for its array task"
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
        text = layout.read_bytes(path, LOG_TAIL_BYTES, tail=True).decode(errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def _read_progress(sweep: layout.SweepDir, run_id: str) -> tuple[Progress, str]:
    """The run's progress, and what is wrong with its history ('' if nothing)."""
    path = sweep.history(run_id)
    try:
        return history.progress(layout.read_text(path)), ""
    except FileNotFoundError:
        return Progress(), ""
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return Progress(), f"{path}: unreadable ({exc})"


def _history_problem(path: Path, progress: Progress, epochs: int, result: dict[str, Any] | None) -> str:
    """What is wrong with a history that parsed: more epochs than the run trains, or none for a run that
    completed ('' if nothing)."""
    why = history.count_problem(progress, epochs)
    if not why and not progress.epochs_done and (result or {}).get("status") == RunState.COMPLETED:
        why = (
            "expected the epochs of a COMPLETED run; received none (the file is empty, cut short or missing)"
        )
    return f"{path}: {why}" if why else ""


def gather_all(
    sweeps: list[layout.SweepDir], backend_for: Callable[[str], Backend]
) -> tuple[list[SweepStatus], list[str]]:
    """Every sweep's status, and a line for each whose manifest cannot be used: one damaged sweep does not
    hide the others."""
    found, damaged = [], []
    for sweep in sweeps:
        try:
            found.append(gather(sweep, backend_for))
        except layout.LayoutError as exc:
            damaged.append(f"{sweep.name}: left out: {exc}")
    return found, damaged


def elapsed(result: dict[str, Any] | None, since: float | None, now: float) -> str:
    """The run's own time, one definition from its start to its end: while a process trains it, from
    when that process took the run (`since`, a Unix time: the run lock's; None when no process holds it)
    to `now`; once it has ended, from its result's `started` to `finished` (a run resumed after a requeue:
    its last attempt's). Never its job's: a job may train several runs in turn, and a table that showed
    the job's time while a run trained and the run's once it ended went backwards. Blank where neither
    is known (waiting, or ended without a result)."""
    if since is not None:
        seconds = max(0, round(now - since))
    elif result and result.get("started") and result.get("finished"):
        span = dt.datetime.fromisoformat(result["finished"]) - dt.datetime.fromisoformat(result["started"])
        seconds = round(span.total_seconds())
    else:
        return ""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"  # as sacct prints it


def _since(sweep: layout.SweepDir, run_id: str) -> float | None:
    """When the process training a run took it: the run lock is written then."""
    try:
        return sweep.run_lock(run_id).stat().st_mtime
    except OSError:
        return None


def gather(sweep: layout.SweepDir, backend_for: Callable[[str], Backend]) -> SweepStatus:
    """One scheduler call per executor in the manifest (in practice one), then the run folders."""
    man = manifest.read(sweep)
    latest = man.latest_job()
    promoters = _promoters(man, search.read(sweep))
    by_executor: dict[str, list[Submission]] = {}
    for submission in [*man.submissions, *promoters]:
        by_executor.setdefault(submission.executor, []).append(submission)
    states: dict[tuple[str, int], JobRow] = {}
    warnings = []
    for executor, subs in by_executor.items():
        found, warning = backend_for(executor).states(subs)
        states.update(found)
        if warning:
            warnings.append(warning)

    results, problems = {}, [p for p in [manifest.left_out(sweep, man)] if p]
    for run_id in man.run_ids:
        results[run_id], why = read_result(sweep.result(run_id))
        if why:
            problems.append(f"{sweep.result(run_id)}: unreadable ({why})")
    now, exported = time.time(), sweep.export_script.is_file()
    plan = search.read(sweep)  # again: a promote job may have moved the search on while we asked
    rung_of = plan.rung_of() if plan else {}
    out = []
    for run in man.runs:
        run_id = run.run_id
        result = results[run_id]
        rung = rung_of.get(run_id)
        progress, why = _read_progress(sweep, run_id)
        epochs = run.settings.train.epochs if plan is None or rung is None else plan.epochs[rung]
        why = why or _history_problem(sweep.history(run_id), progress, epochs, result)
        if why:
            problems.append(why)
        sub, task = latest.get(run_id, (None, 0))
        row = states.get((sub.job_id, task)) if sub else None
        trainer = (
            locks.holder(sweep, run_id) if result is None or result.get("status") not in FINISHED else None
        )
        state, note = run_state(result, row, sub is not None, progress, trainer, exported)
        since = _since(sweep, run_id) if trainer is not None else None
        if state not in FINISHED and not note and sub is not None and state not in ACTIVE:
            note = _last_line(sweep.job_log(sub.job_name(task)))
        objective = Objective.logged_in(progress.last)
        metric = objective.name if objective else ""
        out.append(
            RunStatus(
                run_id,
                run.config_id,
                run.seed,
                state,
                progress.epochs_done,
                epochs,
                metric,
                progress.last.get(metric),
                elapsed(result, since, now),
                sub.job_name(task) if sub else "",
                note,
                "" if plan is None or rung is None else f"{rung + 1}/{len(plan.epochs)}",
            )
        )
    line, waits = "", False
    if plan is not None:
        # A promote job the scheduler does not list yet is still to run, like a run it does not list yet.
        promoting = [
            p.job_id for p in promoters if states.get((p.job_id, 0), JobRow("SUBMITTED")).state in ACTIVE
        ]
        run_states = {r.run_id: r.state for r in out}
        config_of = {r.run_id: r.config_id for r in man.runs}
        line, waits = search.watched(plan, run_states, results, config_of, promoting, man.name)
    return SweepStatus(man.name, out, "; ".join(warnings), problems, line, waits)


def _promoters(man: manifest.Manifest, plan: search.SearchState | None) -> list[Submission]:
    """A halving search's dependent promote jobs, as plain jobs of the executor of the arrays they follow,
    so that the one scheduler call of a refresh asks after them too."""
    if plan is None:
        return []
    executor_of = {s.job_id: s.executor for s in man.submissions}
    return [
        Submission(executor_of.get(rung.jobs[0], "slurm") if rung.jobs else "slurm", job, [[]])
        for rung in plan.rungs
        for job in rung.promote_jobs
    ]
