"""How to pack a sweep's runs into array tasks, from what each part costs: a process's start-up, each run's
training, a task's wait in the queue, and how many tasks can run at once. Pure; the standard library only.

A plan is array tasks × K processes (sharing a task's device, each its own core) × M runs a process trains
in turn. The runs come in program order (programs.program_order) and are cut as `slurm.group` and
`vocab.lanes` cut them, so the estimate is the one for what will run: a process compiles each program it
meets once, and contiguous cuts keep a program in as few processes as they can.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .vocab import lane_bounds

# A fresh TensorFlow process: Python, TensorFlow, Keras, the data and the first compile. 6-13 s on the 2-core
# VM, local and lab Slurm alike, one process per core (bench/RESULTS.md, "the cluster path as fast as the
# local one"); 16-22 s where 24 processes shared those 2 cores (issue 20). A site's shared file system can
# make it longer: the next sweep in the results folder plans with what this one measured.
STARTUP_S = 10.0
# A second program in a running process: its build and compile. Start-up of a run compiled per run against a
# reused one, lesson MLP in turn on 2 cores: 4.30 - 3.08 s (TensorFlow), 2.44 - 0.94 s (JAX)
# (bench/RESULTS.md, per-run costs, third pass).
COMPILE_S = 1.5
# Training throughput a process adds to the others on one GPU: 4 processes sharing an H200 trained the
# lesson MLP 1.85x as fast as one process in turn, (1.85 - 1) / 3 per added process (the team's shared
# measurements, 2026-11-28-h200-hpcjobs.md). Training on CPUs (no GPU, or the lab's fake ones), the first
# process's threads already use the task's cores: a second one shares them, start-up included.
GPU_OVERLAP = 0.28
# A task's wait between a free slot and its start: the scheduler's pass, the node's prolog, srun.
QUEUE_S = 5.0
# The same when squeue shows jobs pending in the partition: a guess, not a measurement (nothing says how
# long their jobs hold the GPUs), large enough that fewer, fuller tasks win.
BUSY_QUEUE_S = 60.0
# A task's estimate times this must fit its time limit less the checkpoint signal's lead: the estimate's
# own error (the issue asks the estimate to be within 1.5x of what a sweep takes).
SAFETY = 1.5
# Plans within this share of the fastest count as ties: the fewest processes among them wins (fewer GPUs
# held for the same time, within the model's precision).
TIE = 0.02


@dataclass(frozen=True)
class Costs:
    startup_s: float = STARTUP_S  # a fresh process up to the end of its first run's first epoch
    compile_s: float = COMPILE_S  # each further program a process meets
    overlap: float = GPU_OVERLAP  # 0: K processes on one device train no faster than one; 1: K times faster
    queue_s: float = QUEUE_S  # a task's wait for its slot to start it
    gpu: bool = True  # processes start on cores of their own and share the GPU; else they share the cores


@dataclass(frozen=True)
class Room:
    """Where the tasks run, as a backend reports it."""

    slots: int  # tasks that can run at once
    where: str  # for the user: "2 GPUs in 'gpu'", "CPU, 2 processes"
    queue_s: float = QUEUE_S
    all_at_once: bool = False  # every task starts when submitted (the local executor): no more than slots
    gpu: bool | None = None  # whether tasks train on a GPU; None: not known here


@dataclass(frozen=True)
class Plan:
    """The packing chosen and its estimate, with the parts it was made of (to print beside it)."""

    runs: int
    tasks: int
    processes: int  # K: processes sharing a task's device
    runs_per_process: int  # M
    seconds: float  # submit to the last run's end, estimated
    slots: int  # tasks that can run at once
    startup_s: float
    run_s: float  # a run's training, on average
    queue_s: float
    over_limit: bool = False  # no packing fits the time limit: a run a process, each resuming on requeue

    @property
    def task_size(self) -> int:
        return self.processes * self.runs_per_process


def slots(
    array_parallelism: int,
    gpus_per_task: int,
    partition_gpus: int | None = None,
    user_gpus: int | None = None,
    max_jobs: int | None = None,
    cpus_per_task: int = 1,
    partition_cpus: int | None = None,
) -> int:
    """Tasks that can run at once: the array's limit, the partition's GPUs and the user's GPU limit (for
    tasks that ask for GPUs), its CPUs, the user's running-job limit; a limit not known (None) limits
    nothing."""
    limits = [array_parallelism, max_jobs]
    if partition_cpus:  # 0: sinfo's %c unreadable
        limits.append(partition_cpus // max(1, cpus_per_task))
    if gpus_per_task > 0:
        limits += [None if g is None else g // gpus_per_task for g in (partition_gpus, user_gpus)]
    return max(1, min(x for x in limits if x is not None))


def choose(
    run_s: Sequence[float],
    programs: Sequence[str],
    costs: Costs,
    slots: int,
    max_processes: int = 1,
    limit_s: float | None = None,
    max_tasks: int | None = None,
    processes: int | None = None,
    runs_per_process: int | None = None,
) -> Plan:
    """The packing of these runs (in program order; `programs` their program keys) that ends soonest.

    `max_processes`: K at most (the task's cores, the GPU's room, its memory); `limit_s`: a task's time
    limit less the signal's lead (None: none); `max_tasks`: where every task starts at once (the local
    executor), no more tasks than slots. `processes` / `runs_per_process`: K / M as the user fixed them."""
    n = len(run_s)
    if n == 0:
        return Plan(0, 0, 1, 1, 0.0, slots, costs.startup_s, 0.0, costs.queue_s)
    trained = [0.0, *itertools.accumulate(run_s)]
    starts = [0, *itertools.accumulate(int(i > 0 and programs[i] != programs[i - 1]) for i in range(n))]
    found: list[tuple[float, int, int, int]] = []  # (seconds, tasks × K, K, M)
    for k in [processes] if processes else range(1, max(1, max_processes) + 1):
        for m in (
            [runs_per_process]
            if runs_per_process
            else sorted({-(-n // (t * k)) for t in range(1, -(-n // k) + 1)})
        ):
            times = _task_times(n, k * m, k, trained, starts, costs)
            if max_tasks is not None and len(times) > max_tasks:
                continue
            if limit_s is not None and max(times) * SAFETY > limit_s:
                continue
            found.append((_makespan(times, slots, costs.queue_s), len(times) * k, k, m))
    over = not found
    if over:  # each run alone still overruns: it checkpoints and requeues (slurm.SIGNAL_DELAY_S)
        k, m = processes or 1, runs_per_process or 1
        times = _task_times(n, k * m, k, trained, starts, costs)
        found = [(_makespan(times, slots, costs.queue_s), len(times) * k, k, m)]
    fastest = min(f[0] for f in found)
    seconds, _, k, m = min((f for f in found if f[0] <= fastest * (1 + TIE)), key=lambda f: (f[1], f[0]))
    tasks = -(-n // (k * m))
    return Plan(n, tasks, k, m, seconds, slots, costs.startup_s, trained[-1] / n, costs.queue_s, over)


def _task_times(
    n: int, size: int, k: int, trained: list[float], starts: list[int], costs: Costs
) -> list[float]:
    """Each task's time: its slowest process, whose runs' training is slowed by the task's other processes."""
    out = []
    for first in range(0, n, size):
        bounds = [first + b for b in lane_bounds(min(size, n - first), k)]
        share = len(bounds) - 1
        slowdown = share / (1 + (share - 1) * costs.overlap)
        own = 1.0 if costs.gpu else slowdown  # start-up and compiling: CPU work
        out.append(
            max(
                own * (costs.startup_s + costs.compile_s * (starts[b] - starts[a + 1]))
                + slowdown * (trained[b] - trained[a])
                for a, b in itertools.pairwise(bounds)
            )
        )
    return out


def _makespan(times: Sequence[float], slots: int, queue_s: float) -> float:
    """When the last task ends if each starts `queue_s` after a slot frees, in order (as Slurm starts an
    array's tasks)."""
    free = [0.0] * min(slots, len(times))
    end = 0.0
    for t in times:
        start = heapq.heappop(free) + queue_s
        end = max(end, start + t)
        heapq.heappush(free, start + t)
    return end


def limit_seconds(minutes: int, signal_delay_s: int) -> float | None:
    """A task's time for its runs: the job's time limit less the checkpoint signal's lead; None for "0",
    which Slurm reads as no limit."""
    return None if minutes == 0 else max(0.0, minutes * 60.0 - signal_delay_s)


def rounded(seconds: float) -> str:
    """'~50 s', '~4 min', '~2.5 h': an estimate's precision."""
    if seconds < 120:
        return f"~{max(1, math.ceil(seconds))} s"
    if seconds < 7200:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
