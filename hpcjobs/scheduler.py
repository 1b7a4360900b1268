"""What hpcjobs asks of a scheduler: the Backend protocol that submit, status and cancel are written
against, and the one error a backend raises.

backends.py holds the implementations (submitit's Slurm and local executors, a fake). Modules that only
use a backend import this contract, not them, and so neither submitit nor the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .layout import SweepDir
from .packplan import Room
from .settings import SlurmSettings
from .slurm import JobRow
from .vocab import Submission

# (array job id, task index) -> what the scheduler says of that task.
States = dict[tuple[str, int], JobRow]


class BackendError(Exception):
    """The scheduler cannot be reached or refused a request; the message is one line for the user."""


class Backend(Protocol):
    name: str

    def check(self) -> None: ...

    def room(self, settings: SlurmSettings) -> Room:
        """Where the tasks run: how many at once, their wait to start, for packing."""
        ...

    def group(self, run_ids: Sequence[str], settings: SlurmSettings) -> list[list[str]]: ...

    def submit(
        self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings
    ) -> Iterable[Submission]:
        """The jobs, one by one as the scheduler accepts them (jobs.submit_recorded records each at once)."""
        ...

    def states(self, subs: Sequence[Submission]) -> tuple[States, str]: ...

    def scripts(self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings) -> list[str]: ...

    def own(self, sweep: SweepDir, subs: Sequence[Submission]) -> list[Submission]:
        """The jobs among `subs` that the scheduler itself says are this user's jobs of this sweep: a
        manifest names jobs, it does not prove them, so `cancel` signals only these."""
        ...

    def cancel(self, subs: Sequence[Submission]) -> None: ...

    def follow_up(self, sweep: SweepDir, after: Sequence[str], settings: SlurmSettings) -> str | None:
        """Submit `hpcjobs promote` to run once the jobs `after` have ended; its job id, or None where
        this scheduler cannot hold a job back (the caller then drives the search itself)."""
        ...
