"""What `status` says of a sweep, as data: a row per run, and the sweep's counts, whether it is done and
which rows a long table shows. Pure: status.py gathers it, render.py draws it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .vocab import ACTIVE, ORDER, QUIET, UNREACHABLE, RunState

# The quiet rows after the ones that need a look, the search's survivors before the runs it stopped.
_QUIET_ORDER = (RunState.PENDING, RunState.SUBMITTED, RunState.COMPLETED, RunState.NOT_SUBMITTED)


def urgency(state: str) -> int:
    """Where a run's row goes in the status table, smallest first: runs that ended badly (failed,
    diverged, timed out...), then runs at work (running, requeued...), then the quiet majority."""
    if state not in QUIET:
        return 1 if state in ACTIVE else 0
    return 2 + (_QUIET_ORDER.index(state) if state in _QUIET_ORDER else len(_QUIET_ORDER))


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
    # A halving search whose runs have all ended but whose promote job is still to run: more is coming.
    search_waits: bool = False

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
        """Nothing more will happen without someone's help: every run has ended, and no promote job is
        about to start a halving search's next rung."""
        return not self.search_waits and all(r.state not in ACTIVE for r in self.runs)

    def shown(self, limit: int | None) -> tuple[list[RunStatus], dict[str, int]]:
        """The rows to list, runs that need a look first (`urgency`: failed, then running, then the quiet
        majority), and the counts of those left out when there are more than `limit`. Manifest order is
        kept among runs of equal urgency."""
        ordered = sorted(self.runs, key=lambda r: urgency(r.state))
        if limit is None or len(ordered) <= limit:
            return ordered, {}
        left = Counter(r.state for r in ordered[limit:])
        return ordered[:limit], {s: left[s] for s in (*ORDER, *sorted(set(left) - set(ORDER))) if left[s]}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "warning": self.warning,
            "problems": self.problems,
            "counts": self.counts,
            "runs": [r.__dict__ for r in self.runs],
        }
