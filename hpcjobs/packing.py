"""Packing a submission: "auto" trials_per_gpu / runs_per_task resolved by the planner (packplan) from what
earlier sweeps measured (measured) and the room the backend reports. Submit, resubmit and a halving search's
rungs all pack here, on Slurm and on the local executor alike, so the paths cannot drift.

What a plan was made from is kept in the manifest (`Inputs`), so a later rung is packed by the same costs
without reading the results folder again. Pure: the callers read the results and ask the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from . import measured, packplan, slurm
from .manifest import Manifest
from .packplan import Costs, Plan, Room
from .settings import Run, SlurmSettings


@dataclass(frozen=True)
class Inputs:
    """Costs measured when the sweep was first submitted, and what the user fixed."""

    startup_s: float
    epoch_s: dict[str, float]  # config id -> seconds an epoch
    max_processes: int  # K at most: the task's cores, the GPU's room for a model this size, its memory
    limit_s: float | None  # a task's time limit less the checkpoint signal's lead
    trials_per_gpu: int | None = None  # as the user fixed them; None: "auto"
    runs_per_task: int | None = None
    gpu: bool | None = None  # earlier runs trained on a GPU
    compile_s: float = packplan.COMPILE_S
    measured_from: int = 0  # results the costs come from (0: defaults)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inputs:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def inputs(
    runs: Sequence[Run],
    params: Mapping[str, int],
    table: SlurmSettings,
    results: Sequence[Mapping[str, Any]],
    max_processes: int,
) -> Inputs:
    """The plan's inputs for these runs (`params`: config id -> the model's weights) from earlier results of
    the sweep's Keras backend, defaults where they say nothing."""
    found = measured.from_results(results)
    epoch_s: dict[str, float] = {}
    for run in runs:
        if run.config_id not in epoch_s:
            epoch_s[run.config_id] = measured.epoch_seconds(run, params[run.config_id], results)
    trials, runs_per_task = table.trials_per_gpu, table.runs_per_task
    return Inputs(
        found.startup_s or packplan.STARTUP_S,
        epoch_s,
        max_processes,
        packplan.limit_seconds(slurm.time_to_minutes(table.time), slurm.SIGNAL_DELAY_S),
        trials_per_gpu=trials if isinstance(trials, int) else None,
        runs_per_task=runs_per_task if isinstance(runs_per_task, int) else None,
        gpu=found.gpu,
        measured_from=found.results,
    )


def pack(
    runs: Sequence[Run],
    table: SlurmSettings,
    given: Inputs,
    room: Room,
    epochs: Mapping[str, int] | None = None,
) -> tuple[SlurmSettings, Plan]:
    """`table` with trials_per_gpu / runs_per_task resolved for these runs (in program order), and the plan.
    `epochs`: the epochs each run trains in this submission where not its own (a halving rung's)."""
    # Processes share a GPU once earlier runs showed they train on one: a GPU asked for may be none (the lab
    # cluster's are fake), and processes sharing CPUs only slow each other down.
    gpu = room.gpu if room.gpu is not None else bool(given.gpu) and table.gpus_per_task > 0
    costs = Costs(given.startup_s, given.compile_s, packplan.GPU_OVERLAP if gpu else 0.0, room.queue_s, gpu)
    # A local task is one process, has no time limit, and the [slurm] table's packing is not for it.
    local = room.all_at_once
    run_s = [
        (epochs or {}).get(r.run_id, r.settings.train.epochs) * given.epoch_s.get(r.config_id, 0.0)
        + measured.RUN_OVERHEAD_S
        for r in runs
    ]
    plan = packplan.choose(
        run_s,
        [r.settings.program_key() for r in runs],
        costs,
        room.slots,
        max_processes=1 if local or table.gpus_per_task == 0 else given.max_processes,
        limit_s=None if local else given.limit_s,
        max_tasks=room.slots if local else None,
        processes=1 if local else given.trials_per_gpu,
        runs_per_process=None if local else given.runs_per_task,
    )
    return replace(table, trials_per_gpu=plan.processes, runs_per_task=plan.runs_per_process), plan


def record(plan: Plan, room: Room, given: Inputs) -> dict[str, Any]:
    """The manifest's "packing": the estimate and its parts, where, and the inputs for later rungs."""
    return {"estimate": asdict(plan), "where": room.where, "inputs": given.to_dict()}


def repack(
    man: Manifest, run_ids: Sequence[str], room: Room, epochs: Mapping[str, int] | None = None
) -> tuple[SlurmSettings, Plan | None]:
    """Runs of a sweep submitted before (in program order) packed by the costs its first submission
    measured, for the room there is now; as first packed where its manifest kept no costs (older ones)."""
    kept = (man.packing or {}).get("inputs")
    if not isinstance(kept, dict):
        return man.slurm, None
    by_id = {r.run_id: r for r in man.runs}
    return pack([by_id[r] for r in run_ids], man.slurm, Inputs.from_dict(kept), room, epochs)


def estimate_and_took(
    man: Manifest, finished: Sequence[str | None], later: Sequence[float | None] = ()
) -> tuple[float, float] | None:
    """(the estimate, the seconds the sweep took from its first submission to its last run's end) once
    every run has ended; None before, or where the manifest kept no estimate. `finished`: the runs'
    result.json "finished" times (UTC); a submission's time is the submitting machine's local time.
    `later`: a halving search's later rungs' estimates, added to its first rung's (the manifest's)."""
    estimate = ((man.packing or {}).get("estimate") or {}).get("seconds")
    if not isinstance(estimate, int | float) or not man.submissions or not finished or None in finished:
        return None
    if None in later:  # a rung submitted before rungs kept their estimate: the sum would be short
        return None
    estimate += sum(x for x in later if x is not None)
    try:
        start = min(datetime.fromisoformat(s.submitted).astimezone() for s in man.submissions)
        end = max(datetime.fromisoformat(f).astimezone() for f in finished if f)
    except (TypeError, ValueError):
        return None
    return float(estimate), (end - start).total_seconds()
