"""What `status` says of a sweep, as data: a row per run, and the sweep's counts, whether it is done and
which rows a long table shows. Pure: status.py gathers it, render.py draws it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .vocab import ACTIVE, ORDER, QUIET, UNREACHABLE


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    config_id: str
    seed: int
    state: str
    epochs_done: int
    epochs: int
    metric: str
    value: float | None
    elapsed: str
    job: str
    note: str = ""
    rung: str = ""  # a halving search's: "2/3", the highest rung the run reached of all rungs


@dataclass(frozen=True)
class SweepStatus:
    name: str
    runs: list[RunStatus]
    warning: str = ""
    problems: list[str] = field(default_factory=list)  # one line per file that could not be used
    search: str = ""  # a halving search: where it stands, or why it ended

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(r.state for r in self.runs)
        return {s: counts[s] for s in (*ORDER, *sorted(set(counts) - set(ORDER))) if counts[s]}

    @property
    def unreachable(self) -> bool:
        """The scheduler did not answer and a state shown depends on it (the last one known, perhaps stale).

        Runs whose ends are written to disk or final in accounting need no controller: a finished sweep
        stays readable, with the warning, while the controller is down."""
        return UNREACHABLE in self.warning and not self.done

    @property
    def done(self) -> bool:
        return all(r.state not in ACTIVE for r in self.runs)

    def shown(self, limit: int | None) -> tuple[list[RunStatus], dict[str, int]]:
        """The runs worth a row when there are too many to list, and the counts of those left out.

        Runs that need a look (failed, running, diverged...) come first; the quiet majority (completed,
        pending, not yet submitted) fills what room is left. Manifest order is kept within each part.
        """
        if limit is None or len(self.runs) <= limit:
            return self.runs, {}
        loud = [r for r in self.runs if r.state not in QUIET]
        keep = {id(r) for r in (loud + [r for r in self.runs if r.state in QUIET])[:limit]}
        left = Counter(r.state for r in self.runs if id(r) not in keep)
        return [r for r in self.runs if id(r) in keep], {s: left[s] for s in ORDER if left[s]}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "warning": self.warning,
            "problems": self.problems,
            "counts": self.counts,
            "runs": [r.__dict__ for r in self.runs],
        }
