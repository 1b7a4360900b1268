"""What earlier sweeps measured, as packing's costs: a fresh process's start-up, a run's training for its data
and model size, and whether runs trained on a GPU. The result.json files of the results folder are the
source; conservative defaults stand in where they say nothing yet.

`from_results` is pure; `read_results` is the thin reader. Neither imports TensorFlow, Keras or pandas.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .settings import Run

# Training throughput where nothing was measured: the lesson MLP under TensorFlow on the 2-core VM under
# load trained at 4,400-7,400 samples/s (bench/RESULTS.md, packing, issue 9); an idle VM or a GPU is faster.
SAMPLES_PER_S = 4_000.0
# ... and a large model's, bound by its multiply-adds: weights × samples a second, from 4 runs of a
# 784-2048-2048-10 MLP (5.8M weights) on mnist5k on the 2-core VM, 820 samples/s (bench/RESULTS.md,
# "the cluster path as fast as the local one"). Below ~1.2M weights the per-batch overhead bounds it instead.
WEIGHT_SAMPLES_PER_S = 4.8e9
# What a run costs a process beyond its epochs: validation, test scores, the per-epoch backup, its data.
# A reused TensorFlow or JAX run's overhead, 0.29-0.32 s (bench/RESULTS.md, per-run costs, fourth pass).
RUN_OVERHEAD_S = 0.5
# Rows of the built-in datasets (data.py), to size a run's epochs without loading them.
BUILTIN_ROWS = {"moons": 1_000, "digits": 1_797, "mnist": 70_000, "fashion_mnist": 70_000, "mnist5k": 5_000}
# A user's file of unknown length counts as MNIST-sized: the estimate errs towards spreading out.
UNKNOWN_ROWS = 70_000
SIMILAR = 2.0  # models within this factor of each other's size train at a like rate
MOST_RESULTS = 400  # the newest result files read: enough for a median, quick on a shared file system


@dataclass(frozen=True)
class Measured:
    """From earlier runs of one Keras backend; None where they said nothing."""

    startup_s: float | None = None  # a fresh process up to the end of its first run's first epoch
    gpu: bool | None = None  # whether they trained on a GPU
    results: int = 0  # how many results these come from


def from_results(results: Iterable[Mapping[str, Any]]) -> Measured:
    """Start-up and device of these results (one Keras backend's). A process's first run pays the imports
    on top of what any newly compiled run pays, so the start-up is the upper decile of the compiled runs'
    (one run in ten at least is a process's first where runs were packed ten to a process)."""
    rows = list(results)
    compiled = sorted(
        float(r["startup_seconds"])
        for r in rows
        if not r.get("reused_model") and _number(r, "startup_seconds")
    )
    devices = [str(r.get("device", "")) for r in rows if r.get("device")]
    return Measured(
        compiled[int(0.9 * len(compiled))] if compiled else None,
        sum(d != "cpu" for d in devices) > len(devices) / 2 if devices else None,
        len(rows),
    )


def epoch_seconds(run: Run, params: int, results: Iterable[Mapping[str, Any]]) -> float:
    """An epoch of this run: as long as epochs took for its data and a model of like size, else its training
    rows at the samples per second of a model of like size, else at SAMPLES_PER_S (WEIGHT_SAMPLES_PER_S
    shared by its weights, for a large model)."""
    data = run.settings.data
    alike = [r for r in results if _similar(r.get("params"), params)]
    same_data = [
        float(r["seconds_per_epoch"])
        for r in alike
        if _source(r) == data.source and _number(r, "seconds_per_epoch")
    ]
    if same_data:
        return statistics.median(same_data)
    rows = BUILTIN_ROWS.get(data.source, UNKNOWN_ROWS) * (1 - data.test_fraction - data.validation_fraction)
    rates = [float(r["samples_per_second"]) for r in alike if _number(r, "samples_per_second")]
    return rows / (
        statistics.median(rates) if rates else min(SAMPLES_PER_S, WEIGHT_SAMPLES_PER_S / max(1, params))
    )


def _number(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _similar(params: Any, target: int) -> bool:
    return isinstance(params, int) and params > 0 and 1 / SIMILAR <= params / max(1, target) <= SIMILAR


def _source(row: Mapping[str, Any]) -> Any:
    return row.get("config", {}).get("data", {}).get("source")


def read_results(
    root: Path, backend: str, executor: str = "", most: int = MOST_RESULTS
) -> list[dict[str, Any]]:
    """The finished results of one Keras backend in the results folder, newest sweeps first, `most` at
    most: those of runs the `executor` trained where there are any (a login node's local runs start and
    train unlike a cluster's), else all. Anything unreadable is passed over: this only informs an estimate."""
    try:
        sweeps = sorted(layout.known_sweeps(root), key=lambda s: s.manifest.stat().st_mtime, reverse=True)
    except OSError:
        return []
    mine: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for sweep in sweeps:
        ran_by = _executors(sweep)
        try:
            paths = sorted(sweep.root.glob(str(sweep.result("*").relative_to(sweep.root))))
        except OSError:
            continue
        for path in paths:
            try:
                row = layout.read_json(path)
            except (OSError, ValueError):
                continue
            if isinstance(row, dict) and row.get("backend") == backend and row.get("startup_seconds"):
                (mine if ran_by.get(path.parent.name) == executor else others).append(row)
                if len(mine) >= most:
                    return mine
    return mine or others[:most]


def _executors(sweep: layout.SweepDir) -> dict[str, str]:
    """Run id -> the executor that last took it, from the manifest's submissions."""
    try:
        data = layout.read_json(sweep.manifest)
        return {r: sub["executor"] for sub in data["submissions"] for task in sub["tasks"] for r in task}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
