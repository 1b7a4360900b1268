"""What runs on the compute node: one scheduler task trains its runs one after the other.

submitit pickles a `Task` (a sweep folder and run ids, never Keras objects). On USR2 (time limit or
preemption) submitit calls `checkpoint`, which requeues the same task; finished runs are skipped and the
interrupted one resumes from its Keras backup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout, locks, manifest
from .results import recorded_status
from .vocab import FINISHED, OOM_HINT, RunState, lanes

_OOM_MARKERS = ("ResourceExhausted", "out of memory", "OOM when allocating", "RESOURCE_EXHAUSTED")


def failure_result(run_id: str, exc: BaseException, traceback_path: Path) -> dict[str, Any]:
    """result.json for a run that raised: OUT_OF_MEMORY gets a hint, anything else is FAILED."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    last_line = text[-1] if text else type(exc).__name__
    oom = isinstance(exc, MemoryError) or any(m in f"{type(exc).__name__} {exc}" for m in _OOM_MARKERS)
    return {
        "run_id": run_id,
        "status": RunState.OUT_OF_MEMORY if oom else RunState.FAILED,
        "error": last_line[:500],
        "hint": OOM_HINT if oom else "",
        "traceback": str(traceback_path),
    }


# A process's first run counts the framework's import and start-up as its own; later runs start when called.
_process_start: float | None = time.perf_counter()


def _startup_clock() -> float:
    global _process_start
    since, _process_start = _process_start or time.perf_counter(), None
    return since


def set_framework_env(sweep: layout.SweepDir, backend: str) -> None:
    """The backend is chosen per sweep and must be set before Keras is first imported. A cache setting of
    the user's own wins (e.g. a cache on a node's local disk)."""
    os.environ["KERAS_BACKEND"] = backend
    for name, value in compile_cache_env(sweep, backend).items():
        os.environ.setdefault(name, value)


def compile_cache_env(sweep: layout.SweepDir, backend: str) -> dict[str, str]:
    """JAX's persistent compilation cache in the sweep's folder, for every program however quick to compile:
    all tasks of a sweep compile the same few programs. Read by JAX when first imported."""
    if backend != "jax":
        return {}
    return {
        "JAX_COMPILATION_CACHE_DIR": str(sweep.compile_cache.resolve()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def run_one(sweep: layout.SweepDir, run_id: str) -> str:
    """Train one run unless it already finished or another process is training it; record an exception
    as the run's result. Everything happens under the run's lock, so no two processes train one run."""
    since = _startup_clock()
    unsafe = layout.run_dir_problem(sweep, run_id)
    if unsafe:  # nothing is written: the run's own folder is the one place it could say so
        print(f"hpcjobs: run {run_id} refused: {unsafe}", flush=True)
        return RunState.FAILED
    with locks.run_lock(sweep, run_id) as lock:
        if lock is None:
            who = locks.holder(sweep, run_id)
            print(f"hpcjobs: run {run_id} is being trained by {_name(who)}: skipped", flush=True)
            return RunState.RUNNING
        previous = recorded_status(sweep.result(run_id))
        if previous in FINISHED:
            return str(previous)
        set_framework_env(sweep, layout.read_config(sweep, run_id).backend)
        try:
            from . import train

            state = str(train.train_run(sweep, run_id, since)["status"])
        except Exception as exc:
            return _record_failure(sweep, run_id, exc, lock)
        _clear_failure(sweep, run_id, state)
        return state


def _name(who: locks.Holder | None) -> str:
    return f"process {who.pid} on {who.host}" if who and who.pid else "another process"


def _clear_failure(sweep: layout.SweepDir, run_id: str, state: str) -> None:
    """A run that finished has no traceback: an earlier attempt's would say it failed."""
    if state in FINISHED:
        sweep.stderr_hint(run_id).unlink(missing_ok=True)


def _record_failure(sweep: layout.SweepDir, run_id: str, exc: Exception, lock: locks.RunLock) -> str:
    path = sweep.stderr_hint(run_id)
    result = failure_result(run_id, exc, path)
    try:
        layout.write_text(path, traceback.format_exc())
        layout.write_json(sweep.result(run_id), result)
    except OSError as write_error:
        # A full disk: the traceback cannot be kept, but the run can still say why it ended.
        lock.free_reserve()
        result["traceback"] = ""
        result["hint"] = (
            f"cannot write into {path.parent} ({write_error.strerror}): free space, then resubmit"
        )
        layout.write_json(sweep.result(run_id), result)
    print(f"hpcjobs: run {run_id} {result['status']}: {result['error']}", flush=True)
    return str(result["status"])


def run_population(sweep: layout.SweepDir, run_ids: Sequence[str]) -> dict[str, str]:
    """Train the runs of one population key (plan.populations) as one vmapped JAX program, each under its
    run lock like run_one; an exception fails the members that had not finished."""
    since = _startup_clock()
    with contextlib.ExitStack() as stack:
        held: dict[str, locks.RunLock] = {}
        outcomes: dict[str, str] = {}
        for run_id in run_ids:
            unsafe = layout.run_dir_problem(sweep, run_id)
            if unsafe:  # as in run_one: nothing is written
                print(f"hpcjobs: run {run_id} refused: {unsafe}", flush=True)
                outcomes[run_id] = RunState.FAILED
                continue
            lock = stack.enter_context(locks.run_lock(sweep, run_id))
            if lock is None:
                print(
                    f"hpcjobs: run {run_id} is being trained by {_name(locks.holder(sweep, run_id))}: skipped"
                )
                outcomes[run_id] = RunState.RUNNING
            else:
                held[run_id] = lock
        set_framework_env(sweep, "jax")
        try:
            from . import population

            outcomes.update(population.train_population(sweep, list(held), since))
        except Exception as exc:
            for run_id, lock in held.items():
                status = recorded_status(sweep.result(run_id))
                outcomes[run_id] = status if status in FINISHED else _record_failure(sweep, run_id, exc, lock)
        for run_id in held:
            _clear_failure(sweep, run_id, outcomes[run_id])
    return {run_id: outcomes[run_id] for run_id in run_ids}


def run_lane(sweep: layout.SweepDir, run_ids: Sequence[str]) -> dict[str, str]:
    """One process's runs in turn, the runs of each population (plan.populations) together."""
    from .plan import MAX_POPULATION, populations

    configs = {run_id: layout.read_config(sweep, run_id) for run_id in run_ids}
    outcomes: dict[str, str] = {}
    groups = populations(configs, MAX_POPULATION)
    for done, group in enumerate(groups):
        try:
            if len(group) == 1:
                outcomes[group[0]] = run_one(sweep, group[0])
            else:
                outcomes.update(run_population(sweep, group))
        except KeyboardInterrupt:
            _record_cancelled(sweep, [run_id for rest in groups[done:] for run_id in rest])
            raise
    return {run_id: outcomes[run_id] for run_id in run_ids}


def _record_cancelled(sweep: layout.SweepDir, run_ids: Sequence[str]) -> None:
    """SIGINT (`hpcjobs cancel` through the local controller, or Ctrl-C) stopped the lane: its runs that had
    not finished say CANCELLED, where the task's end alone made them FAILED. Under each run's lock, as
    quickly as it goes: the controller kills the task a second after its SIGINT."""
    for run_id in run_ids:
        with locks.run_lock(sweep, run_id) as lock:
            if lock is not None and recorded_status(sweep.result(run_id)) not in FINISHED:
                error = "interrupted (SIGINT): `hpcjobs cancel` or Ctrl-C"
                layout.write_json(
                    sweep.result(run_id),
                    {
                        "run_id": run_id,
                        "status": RunState.CANCELLED,
                        "error": error,
                        "hint": "",
                        "traceback": "",
                    },
                )


# Several trainings share one GPU: neither framework may take all of its memory at start-up.
_SWEEP_WAITED = "HPCJOBS_SWEEP_WAITED"
SHARED_GPU_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}

# How a task starts each process of its lane: the worker's own entry point, not the CLI (click, rich).
LANE_COMMAND = ("-c", "import sys; from hpcjobs.worker import main; sys.exit(main(sys.argv[1:]))")


def main(argv: Sequence[str]) -> int:
    """One process of a task: SWEEP_DIR RUN_ID... trained in turn; exit 1 if any did not finish."""
    root, *run_ids = argv
    sweep = layout.SweepDir(Path(root))
    outcomes = run_lane(sweep, run_ids)
    for run_id, state in outcomes.items():
        print(f"{run_id}: {state}", flush=True)
    return 0 if all(state in FINISHED for state in outcomes.values()) else 1


@dataclass(frozen=True)
class Task:
    """One array task: its runs, trained in turn by each of `parallel` processes sharing the task's GPU."""

    sweep_root: str
    run_ids: tuple[str, ...]
    parallel: int = 1

    def __call__(self) -> dict[str, str]:
        sweep = layout.SweepDir(Path(self.sweep_root))
        if not os.environ.get(_SWEEP_WAITED):  # a lane's parent task has waited for it already
            locks.wait_for_sweep(sweep)
        if self.parallel == 1 or len(self.run_ids) == 1:
            return run_lane(sweep, self.run_ids)
        env = {**os.environ, **SHARED_GPU_ENV, _SWEEP_WAITED: "1"}
        procs = [
            subprocess.Popen([sys.executable, *LANE_COMMAND, self.sweep_root, *lane], env=env)
            for lane in lanes(self.run_ids, self.parallel)
        ]
        for proc in procs:
            proc.wait()  # a failed run is recorded in its result.json; the exit code adds nothing
        return {run_id: recorded_status(sweep.result(run_id)) or RunState.FAILED for run_id in self.run_ids}

    def checkpoint(self) -> Any:
        """Called by submitit on USR2: requeue this same task (progress lives on disk)."""
        from .submititlib import submitit

        return submitit.helpers.DelayedSubmission(Task(self.sweep_root, self.run_ids, self.parallel))


def requeue_on_time_limit() -> None:
    """In a task submitted without submitit (export-sbatch): on USR2, which Slurm sends ahead of the time
    limit, requeue this task and stop, as submitit does for its own; the run resumes from its last epoch
    backup when the task starts again."""

    def requeue(signum: int, frame: object) -> None:
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
        print(f"hpcjobs: signal {signum} (time limit near): requeueing {job}", flush=True)
        subprocess.run(["scontrol", "requeue", job], check=False, timeout=60)
        sys.exit(-1)  # SystemExit, like submitit: not an exception a run would record as its failure

    signal.signal(signal.SIGUSR2, requeue)


def run_here(sweep: layout.SweepDir, run_ids: Sequence[str], index: int | None = None) -> dict[str, str]:
    """`hpcjobs run`: train runs of a sweep in this process as its task would, those named and the one at
    array index `index` (an exported script's task); in a Slurm job, requeued ahead of its time limit."""
    ids = [*run_ids, *([] if index is None else [_run_at(sweep, index)])]
    _check_run_ids(sweep, ids)
    if "SLURM_JOB_ID" in os.environ:
        requeue_on_time_limit()
    return Task(str(sweep.root), tuple(ids))()


def _run_at(sweep: layout.SweepDir, index: int) -> str:
    """The run id of an array task of an exported script."""
    ids = manifest.read(sweep).run_ids
    if not 0 <= index < len(ids):
        raise layout.LayoutError(
            f"--index {index} is out of range: expected 0..{len(ids) - 1} for sweep {sweep.name}"
        )
    return ids[index]


def _check_run_ids(sweep: layout.SweepDir, run_ids: Sequence[str]) -> None:
    """Run ids typed by a person must be runs of this sweep: anything else, '../x' included, would train
    and write outside it."""
    known = set(manifest.read(sweep).run_ids)
    for run_id in run_ids:
        if run_id not in known:
            shown = run_id if len(run_id) <= 80 else f"{run_id[:77]}..."
            raise layout.LayoutError(
                f"no run {shown!r} in sweep {sweep.name}: expected a run id that `hpcjobs status "
                f"{sweep.name} --all` lists"
            )
