"""The words every other module uses: run states, the objective a run is judged by, the jobs a command
submits and the lanes of their tasks, the built-in datasets' names, and input errors with their 'did you
mean'.

The ground floor of the package: it imports nothing of hpcjobs and nothing outside the standard library,
so the login-node commands, the worker and the training all read the same definitions.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class RunState:
    """What hpcjobs says about a run: a scheduler state, or what the run wrote to its result.json."""

    NOT_SUBMITTED = "NOT_SUBMITTED"
    SUBMITTED = "SUBMITTED"  # handed to the scheduler, which does not list it yet
    PENDING = "PENDING"
    REQUEUED = "REQUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    # Stopped by the search (halving): its rung ranked its configuration below the ones promoted. It has a
    # result (the rung's) and is not a failure; nothing trains it again.
    PRUNED = "PRUNED"
    DIVERGED = "DIVERGED"  # stopped early: its training loss was no longer a finite number
    PREEMPTED = "PREEMPTED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    FAILED = "FAILED"


# The order states are listed in: what needs attention last, where the eye lands.
ORDER = (
    RunState.NOT_SUBMITTED,
    RunState.SUBMITTED,
    RunState.PENDING,
    RunState.REQUEUED,
    RunState.RUNNING,
    RunState.COMPLETED,
    RunState.PRUNED,
    RunState.DIVERGED,
    RunState.PREEMPTED,
    RunState.TIMEOUT,
    RunState.CANCELLED,
    RunState.OUT_OF_MEMORY,
    RunState.NODE_FAIL,
    RunState.FAILED,
)

# Ended with a result: never trained again.
FINISHED = frozenset({RunState.COMPLETED, RunState.PRUNED, RunState.DIVERGED})

# Ended without a result: `resubmit --failed` takes these. PREEMPTED is here, not among the active states:
# a task that submitit could requeue comes back as REQUEUED/PENDING, so one that sacct still calls
# PREEMPTED was ended by the preemption and nothing will run it again unless it is resubmitted.
RETRYABLE = frozenset(
    {
        RunState.FAILED,
        RunState.OUT_OF_MEMORY,
        RunState.TIMEOUT,
        RunState.NODE_FAIL,
        RunState.CANCELLED,
        RunState.PREEMPTED,
        RunState.BOOT_FAIL,
        RunState.DEADLINE,
    }
)

# Still has work coming without anyone's help: `status --watch` and `submit --wait` wait for these,
# `cancel` stops them. The Slurm states a live job passes through are spelled as sacct spells them.
ACTIVE = frozenset(
    {
        RunState.SUBMITTED,
        RunState.PENDING,
        RunState.REQUEUED,
        RunState.RUNNING,
        "RESIZING",
        "SUSPENDED",
        "CONFIGURING",
        "COMPLETING",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)

# The quiet majority of a large sweep: the status table lists every other state first.
QUIET = frozenset(
    {RunState.COMPLETED, RunState.PRUNED, RunState.PENDING, RunState.SUBMITTED, RunState.NOT_SUBMITTED}
)

# What an OUT_OF_MEMORY run's note says, whether the worker caught the error or Slurm killed the task.
OOM_HINT = "lower train.batch_size or ask for more memory (slurm.mem_gb)"

# How a backend's warning begins when the scheduler did not answer: `status` then exits 1, as documented.
UNREACHABLE = "Slurm unreachable"

# The data sources a sweep file names by name; any other source is the path of a user's .npz or .csv file.
DATASETS = ("moons", "digits", "mnist", "fashion_mnist", "mnist5k")


@dataclass(frozen=True)
class Objective:
    """The validation value that picks a run's best epoch (and drives early stopping), and its direction.

    Decided once per run at training time from the compiled metrics (`for_metrics`) and written into
    result.json; readers of a history without a result apply the same rule to its columns (`logged_in`).
    """

    name: str
    direction: str  # "max" or "min", as Keras' callbacks call their mode

    @classmethod
    def for_metrics(cls, metrics: Iterable[str]) -> Objective:
        """Validation accuracy where it is computed, else validation loss."""
        names = set(metrics)
        for name in ("categorical_accuracy", "accuracy"):
            if name in names:
                return cls(f"val_{name}", "max")
        return cls("val_loss", "min")

    @classmethod
    def logged_in(cls, columns: Iterable[str]) -> Objective | None:
        """The objective of a run that logged these history columns; None where its value is not logged."""
        columns = list(columns)
        objective = cls.for_metrics(c.removeprefix("val_") for c in columns)
        return objective if objective.name in columns else None

    @property
    def sign(self) -> float:
        """+1.0 where larger is better, -1.0 where smaller is: sign × value is to be maximized."""
        return 1.0 if self.direction == "max" else -1.0

    def better_than(self, a: float, b: float) -> bool:
        """a is strictly better than b; NaN and ±inf (a broken metric, not a score) are never better than
        anything, and any finite value is better than them."""
        if not math.isfinite(a):
            return False
        return not math.isfinite(b) or self.sign * a > self.sign * b

    def best_epoch(self, values: Sequence[float]) -> int | None:
        """Index of the first best value; None when no value is finite (nothing to choose from)."""
        best: int | None = None
        for index, value in enumerate(values):
            if best is None or self.better_than(value, values[best]):
                best = index
        return None if best is None or not math.isfinite(values[best]) else best


class InputError(Exception):
    """Input that hpcjobs cannot use as given: a sweep file, a folder, a data file, an option. The message is
    one line saying what is wrong and what is expected; the CLI prints it and exits 2."""


class DataError(InputError, ValueError):
    """A data source that cannot be used: one line saying what is wrong and what is expected.

    Here, not in data.py, because loading a source (data.py) and splitting it (splits.py) both raise it."""


def closest(word: str, options: Iterable[str]) -> str | None:
    """The valid option nearest to `word` (case ignored), if one is near enough to be a typo of it."""
    by_lower = {o.lower(): o for o in options}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[found[0]] if found else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' to append to an input error's message, or '' when nothing is close."""
    found = closest(word, options)
    return f" (did you mean '{found}'?)" if found else ""


@dataclass(frozen=True)
class Submission:
    """One scheduler job: a Slurm array (or plain job), or one local worker process."""

    executor: str  # slurm | local | fake
    job_id: str  # Slurm job id of the array, or the local worker's pid
    tasks: list[list[str]]  # task index -> run ids, in the order the task trains them
    parallel: int = 1  # processes per task sharing its GPU; `lanes` says which process trains which
    submitted: str = field(default_factory=lambda: dt.datetime.now().isoformat(timespec="seconds"))
    # A local worker's identity beyond its pid, which the system reuses: its start time and machine.
    process_start: str = ""
    host: str = ""

    def job_name(self, task: int) -> str:
        """How the scheduler names one task: submitit submits a single task as a plain job."""
        return f"{self.job_id}_{task}" if len(self.tasks) > 1 else self.job_id


def lanes(run_ids: Sequence[T], parallel: int) -> list[list[T]]:
    """How a task's runs are shared among its processes: contiguous parts as even as they can be, so that
    runs of one program, which come together (programs.program_order), stay in as few processes as they can
    and each compiles once."""
    return [list(run_ids[a:b]) for a, b in itertools.pairwise(lane_bounds(len(run_ids), parallel))]


def lane_bounds(n: int, parallel: int) -> list[int]:
    """Where `lanes` cuts n runs: min(parallel, n) parts whose sizes differ by one at most."""
    count = min(parallel, n)
    if count == 0:
        return []
    size, extra = divmod(n, count)
    return [i * size + min(i, extra) for i in range(count + 1)]
