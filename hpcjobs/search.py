"""Successive halving across scheduler jobs: the rungs, the ranking of a rung, and what to do next.

Pure but for `read` and `write` of the state, and standard library only: `status` reads it on login nodes.
The plan lives in the sweep folder (search.json), so no process stays alive between rungs: each rung's
runs are an ordinary array, and `hpcjobs promote` (promote.py) - run by a small job that depends on them,
or by a person - reads their results and submits the next rung.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import layout
from .settings import RunConfig
from .vocab import ACTIVE, RunState


def rung_epochs(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """Epochs a configuration has trained by the end of each rung: min_epochs × eta^k, then max_epochs
    (2, 3, 20 -> [2, 6, 20]; 1, 3, 27 -> [1, 3, 9, 27]). A step short of the budget is merged into the
    last rung: 2, 6, 18, 20 would train the last survivors 2 more epochs for a whole rung's overhead."""
    rungs = [min_epochs]
    while rungs[-1] * eta * eta <= max_epochs:
        rungs.append(rungs[-1] * eta)
    if rungs[-1] < max_epochs:
        rungs.append(max_epochs)
    return rungs


def keep(configurations: int, eta: int) -> int:
    """How many configurations a rung promotes: the best 1/eta of them, at least one."""
    return max(1, configurations // eta)


def plan(configurations: int, seeds: int, min_epochs: int, eta: int, max_epochs: int) -> list[str]:
    """What a new search will do, for submit and --dry-run: each rung's runs and epochs, at most (a
    configuration that fails is not promoted), and who promotes it. Pure."""
    lines = [f"halving search, the best 1/{eta} of each rung go on:"]
    for index, epochs in enumerate(rung_epochs(min_epochs, eta, max_epochs)):
        configs = f"{configurations} configuration{'s' if configurations != 1 else ''}"
        lines.append(
            f"  rung {index + 1}: {configurations * seeds} runs ({configs} × {seeds} seeds) to epoch {epochs}"
        )
        configurations = keep(configurations, eta)
    return lines


@dataclass
class Rung:
    epochs: int  # what its runs have trained by its end (train.epochs in their config.json)
    runs: list[str]
    jobs: list[str] = field(default_factory=list)  # the arrays that train it; empty until submitted
    promote_jobs: list[str] = field(default_factory=list)  # the dependent `hpcjobs promote` jobs
    ranking: list[tuple[str, float | None]] = field(default_factory=list)  # config, score: once it ended
    estimate_s: float | None = None  # the packing planner's, for a rung that promote submitted


@dataclass
class SearchState:
    """search.json: the plan, what each rung trained, and why the search ended."""

    epochs: list[int]  # per rung, from rung_epochs
    eta: int
    rungs: list[Rung]
    ended: str = ""  # why the search ended; empty while it goes on

    def rung_of(self) -> dict[str, int]:
        """Each run's highest rung (0-based)."""
        return {run_id: index for index, rung in enumerate(self.rungs) for run_id in rung.runs}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchState:
        rungs = [
            Rung(
                r["epochs"],
                r["runs"],
                r["jobs"],
                r["promote_jobs"],
                [tuple(x) for x in r["ranking"]],
                r.get("estimate_s"),
            )
            for r in data["rungs"]
        ]
        return cls(data["epochs"], data["eta"], rungs, data.get("ended", ""))


def start(min_epochs: int, eta: int, max_epochs: int, run_ids: Sequence[str]) -> SearchState:
    """A new search: every run in the first rung."""
    plan = rung_epochs(min_epochs, eta, max_epochs)
    return SearchState(plan, eta, [Rung(plan[0], list(run_ids))])


def score(results: Sequence[Mapping[str, Any] | None]) -> float | None:
    """A configuration's rung score, to be maximized: the mean over its seeds of sign × the monitored
    validation value at each run's best epoch. None where any seed failed, diverged or has no value: a
    configuration that breaks on one seed ranks last."""
    values = []
    for result in results:
        if not result or result.get("status") != RunState.COMPLETED:
            return None
        value = (result.get("best") or {}).get(result.get("monitor", ""))
        if value is None or not math.isfinite(value):
            return None
        values.append((1.0 if result.get("direction", "max") == "max" else -1.0) * float(value))
    return sum(values) / len(values) if values else None


def rank(scores: Mapping[str, float | None]) -> list[str]:
    """Configurations best first; those without a score last, in their given order."""
    order = list(scores)
    return sorted(order, key=lambda c: (scores[c] is None, -(scores[c] or 0.0), order.index(c)))


@dataclass(frozen=True)
class Decision:
    """What promote does now. kind: wait | stalled | stop | finish | promote."""

    kind: str
    reason: str
    ranking: list[tuple[str, float | None]] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)  # run ids of the next rung
    pruned: list[str] = field(default_factory=list)  # run ids the search stops now


def decide(
    state: SearchState,
    states: Mapping[str, str],
    results: Mapping[str, Mapping[str, Any] | None],
    config_of: Mapping[str, str],
) -> Decision:
    """The next step for the last rung, from each run's state and result.json (None where it has none)."""
    index, rung = len(state.rungs) - 1, state.rungs[-1]
    name = f"rung {index + 1} of {len(state.epochs)} ({rung.epochs} epochs)"
    busy = [r for r in rung.runs if states.get(r) in ACTIVE]
    if busy:
        return Decision("wait", f"{name}: {len(busy)} of {len(rung.runs)} runs still have work")
    lost = [r for r in rung.runs if results.get(r) is None]
    if lost:
        return Decision(
            "stalled",
            f"{name}: {len(lost)} runs ended without a result ({states.get(lost[0], '?')} {lost[0]}): "
            f"resubmit them (hpcjobs resubmit), then promote",
        )
    by_config: dict[str, list[str]] = {}
    for run_id in rung.runs:
        by_config.setdefault(config_of[run_id], []).append(run_id)
    scores = {c: score([results[r] for r in runs]) for c, runs in by_config.items()}
    ranking = [(c, scores[c]) for c in rank(scores)]
    if all(s is None for s in scores.values()):
        first = next(results[r] for r in rung.runs)
        why = (first or {}).get("error") or (first or {}).get("status", "")
        return Decision("stop", f"{name}: every configuration failed or diverged (first: {why})", ranking)
    if index + 1 == len(state.epochs):
        best = ranking[0][0]
        result = results[next(r for r in rung.runs if config_of[r] == best)] or {}
        mean = (ranking[0][1] or 0.0) * (1.0 if result.get("direction", "max") == "max" else -1.0)
        why = f"finished: best configuration {best}, mean {result.get('monitor')} {mean:.4f}"
        return Decision("finish", why, ranking)
    kept = {c for c, value in ranking[: keep(len(ranking), state.eta)] if value is not None}
    survivors = [r for r in rung.runs if config_of[r] in kept]
    pruned = [r for r in rung.runs if config_of[r] not in kept]
    return Decision(
        "promote",
        f"{name}: {len(kept)} of {len(ranking)} configurations promoted to {state.epochs[index + 1]} epochs",
        ranking,
        survivors,
        pruned,
    )


def progress(state: SearchState) -> list[tuple[int, float, str]]:
    """Per rung ranked so far: (epochs the search has trained by its end, the best score, its
    configuration), the score as `score` gives it (sign × the objective). What the search paid for what."""
    points, spent, before = [], 0, 0
    for rung in state.rungs:
        spent += len(rung.runs) * (rung.epochs - before)
        before = rung.epochs
        best = next(((c, s) for c, s in rung.ranking if s is not None), None)
        if best is not None:
            points.append((spent, best[1], best[0]))
    return points


def where(state: SearchState) -> str:
    """One line on where a search stands, for status."""
    if state.ended:
        return state.ended
    last = state.rungs[-1]
    return f"rung {len(state.rungs)} of {len(state.epochs)} ({last.epochs} epochs, {len(last.runs)} runs)"


def watched(
    state: SearchState,
    states: Mapping[str, str],
    results: Mapping[str, Mapping[str, Any] | None],
    config_of: Mapping[str, str],
    promoting: Sequence[str],
    name: str,
) -> tuple[str, bool]:
    """Where a search stands for status, and whether a watch waits on for it once its runs have all
    ended: while one of its promote jobs (`promoting`: those the scheduler has not finished) is still to
    rank the rung and submit the next one. Between rungs on Slurm every run has ended, and the search
    has not."""
    if state.ended:
        return state.ended, False
    index, rung = len(state.rungs) - 1, state.rungs[-1]
    if any(states.get(r) in ACTIVE for r in rung.runs):
        return where(state), False
    name_of_rung = f"rung {index + 1} of {len(state.epochs)}"
    job = f"promote job {', '.join([j for j in promoting if j in rung.promote_jobs] or promoting)}"
    if not rung.jobs:  # recorded by a promote that has not submitted it yet, or stopped before it could
        if promoting:
            return f"{where(state)}: being submitted by {job}", True
        return f"{where(state)}: not submitted yet: run `hpcjobs promote {name}`", False
    if promoting:
        if index + 1 < len(state.epochs):
            after = f"rung {index + 2} ({state.epochs[index + 1]} epochs, {job})"
            return f"{name_of_rung} ended: waiting for {after}", True
        return f"{name_of_rung} ended: waiting for {job} to rank it", True
    decision = decide(state, states, results, config_of)
    if decision.kind == "stalled":
        return decision.reason, False
    why = (
        f"its promote job {', '.join(rung.promote_jobs)} ended without promoting it"
        if rung.promote_jobs
        else "no promote job is queued"
    )
    return f"{name_of_rung} ended and {why}: run `hpcjobs promote {name}`", False


def rung_config(config: RunConfig, epochs: int) -> RunConfig:
    """A run's config.json for a rung: train to `epochs`, and keep the Keras backup at the end so that a
    promotion continues from it (epochs 1..N, each once) instead of starting over."""
    return replace(config, settings=config.settings.with_value("train.epochs", epochs), keep_backup=True)


def read(sweep: layout.SweepDir) -> SearchState | None:
    """The search of a sweep folder; None for a sweep that is not a halving search."""
    try:
        return SearchState.from_json(layout.read_json(sweep.search_state))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise layout.LayoutError(f"{sweep.search_state}: unreadable search state ({exc})") from None


def write(sweep: layout.SweepDir, state: SearchState) -> None:
    layout.write_json(sweep.search_state, state.to_json())
