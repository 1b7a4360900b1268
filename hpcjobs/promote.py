"""`hpcjobs promote`: advance a halving search by one step, the I/O around search.decide.

Run by the dependent job that follows each rung's arrays, by `submit --wait` on the local executor, or by
hand. Safe to run twice, and at once: it holds the sweep lock (locks.py) like submit, and a rung already
promoted is not promoted again. The next rung is recorded before its configs change and submitted only
while it has no jobs, so a promote interrupted in between is finished by the next one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import layout, locks, manifest, packing, programs, search, status
from .jobs import SweepError, check_private, follow_search, submit_recorded
from .scheduler import Backend
from .search import Decision, Rung, SearchState
from .vocab import RunState, Submission


@dataclass
class Promotion:
    decision: Decision
    submissions: list[Submission] = field(default_factory=list)
    warning: str = ""

    @property
    def ended(self) -> bool:
        return self.decision.kind in ("stop", "finish", "ended")


# The dependent job must not give up on a sweep that a person is submitting or promoting at that moment.
LOCK_WAIT_S = 300.0


def _result(sweep: layout.SweepDir, run_id: str) -> dict[str, Any] | None:
    try:
        data = layout.read_json(sweep.result(run_id))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def promote(
    sweep: layout.SweepDir, backend_for: Callable[[str], Backend], executor: str | None = None
) -> Promotion:
    """Rank the current rung once it has ended, stop the runs below the cut, submit the next rung."""
    check_private(sweep.root)
    with locks.sweep_lock(sweep, wait_s=LOCK_WAIT_S):
        state = search.read(sweep)
        if state is None:
            raise SweepError(
                f'{sweep.name} is not a halving search: expected a sweep with search.method = "halving"'
            )
        if state.ended:
            return Promotion(Decision("ended", state.ended))
        man = manifest.read(sweep)
        backend = backend_for(executor or (man.submissions[-1].executor if man.submissions else "auto"))
        if not state.rungs[-1].jobs:  # recorded by a promote that stopped before submitting it
            return Promotion(
                Decision("promote", "submitting the recorded next rung"), *_submit(sweep, state, backend, man)
            )
        rung = state.rungs[-1]
        states = {r.run_id: r.state for r in status.gather(sweep, backend_for).runs}
        results = {run_id: _result(sweep, run_id) for run_id in rung.runs}
        decision = search.decide(state, states, results, {r.run_id: r.config_id for r in man.runs})
        if decision.kind in ("wait", "stalled"):
            return Promotion(decision)
        rung.ranking = decision.ranking
        for run_id in decision.pruned:
            _prune(sweep, run_id, results[run_id], len(state.rungs))
        if decision.kind != "promote":
            state.ended = decision.reason
            search.write(sweep, state)
            return Promotion(decision)
        state.rungs.append(Rung(state.epochs[len(state.rungs)], decision.survivors))
        search.write(sweep, state)
        return Promotion(decision, *_submit(sweep, state, backend, man))


def drive(
    sweep: layout.SweepDir, backend_for: Callable[[str], Backend], wait: Callable[[], None]
) -> Iterator[Promotion]:
    """Promote rung after rung until the search ends or stalls; `wait` returns once the runs submitted last
    have ended. Nothing for a sweep that is no halving search."""
    if search.read(sweep) is None:
        return
    while True:
        promotion = promote(sweep, backend_for)
        yield promotion
        if promotion.ended or promotion.decision.kind == "stalled":
            return
        wait()


def _prune(sweep: layout.SweepDir, run_id: str, result: dict[str, Any] | None, rung: int) -> None:
    """The search stops this run: its result says so (keeping what it was), its backup goes."""
    if result is None or result.get("status") == RunState.PRUNED:
        return
    was = result.get("status")
    layout.write_json(
        sweep.result(run_id), {**result, "status": RunState.PRUNED, "search": {"rung": rung, "was": was}}
    )
    shutil.rmtree(sweep.backup_dir(run_id), ignore_errors=True)


def _submit(
    sweep: layout.SweepDir, state: SearchState, backend: Backend, man: manifest.Manifest
) -> tuple[list[Submission], str]:
    """The last rung's runs continue from their backups to its epochs."""
    rung = state.rungs[-1]
    for run_id in rung.runs:
        layout.write_config(sweep, search.rung_config(layout.read_config(sweep, run_id), rung.epochs))
    backend.check()
    for run_id in rung.runs:  # its last rung's result would make the worker skip the run as finished
        if sweep.result(run_id).is_file():
            sweep.result(run_id).replace(sweep.previous_result(run_id))
    # Packed by the same costs as the first rung, for the epochs the survivors train on from their backups.
    before = state.rungs[-2].epochs if len(state.rungs) > 1 else 0
    order = programs.program_order(rung.runs, {r.run_id: r.settings for r in man.runs})
    settings, plan = packing.repack(
        man, order, backend.room(man.slurm), dict.fromkeys(order, rung.epochs - before)
    )
    if plan is not None:  # beside what the search took, in collect: its first rung's is the manifest's
        rung.estimate_s = plan.seconds
        search.write(sweep, state)
    subs = submit_recorded(sweep, man, backend, backend.group(order, settings), settings)
    return subs, follow_search(sweep, backend, subs, settings)
