"""What runs on the compute node: one scheduler task trains its runs one after the other.

submitit pickles a `Task` (a sweep folder and run ids, never Keras objects). On USR2 (time limit or
preemption) submitit calls `checkpoint`, which requeues the same task; finished runs are skipped and the
interrupted one resumes from its Keras backup.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout

FINAL = ("COMPLETED", "DIVERGED")
_OOM_MARKERS = ("ResourceExhausted", "out of memory", "OOM when allocating", "RESOURCE_EXHAUSTED")


def failure_result(run_id: str, exc: BaseException, traceback_path: Path) -> dict[str, Any]:
    """result.json for a run that raised: OUT_OF_MEMORY gets a hint, anything else is FAILED."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    last_line = text[-1] if text else type(exc).__name__
    oom = isinstance(exc, MemoryError) or any(m in f"{type(exc).__name__} {exc}" for m in _OOM_MARKERS)
    return {
        "run_id": run_id,
        "status": "OUT_OF_MEMORY" if oom else "FAILED",
        "error": last_line[:500],
        "hint": "lower train.batch_size or ask for more memory (slurm.mem_gb)" if oom else "",
        "traceback": str(traceback_path),
    }


def run_one(sweep: layout.SweepDir, run_id: str) -> str:
    """Train one run unless it already finished; record an exception as the run's result."""
    if sweep.result(run_id).is_file():
        previous = layout.read_json(sweep.result(run_id)).get("status")
        if previous in FINAL:
            return str(previous)
    config = layout.read_json(sweep.config(run_id))
    # The backend is chosen per sweep and must be set before Keras is first imported.
    os.environ["KERAS_BACKEND"] = config["backend"]
    try:
        from . import train

        return str(train.train_run(sweep, run_id)["status"])
    except Exception as exc:
        path = sweep.stderr_hint(run_id)
        layout.write_text(path, traceback.format_exc())
        result = failure_result(run_id, exc, path)
        layout.write_json(sweep.result(run_id), result)
        print(f"hpcjobs: run {run_id} {result['status']}: {result['error']}", flush=True)
        return str(result["status"])


@dataclass(frozen=True)
class Task:
    """One array task: the runs it trains, in order."""

    sweep_root: str
    run_ids: tuple[str, ...]

    def __call__(self) -> dict[str, str]:
        sweep = layout.SweepDir(Path(self.sweep_root))
        return {run_id: run_one(sweep, run_id) for run_id in self.run_ids}

    def checkpoint(self) -> Any:
        """Called by submitit on USR2: requeue this same task (progress lives on disk)."""
        import submitit

        return submitit.helpers.DelayedSubmission(Task(self.sweep_root, self.run_ids))
