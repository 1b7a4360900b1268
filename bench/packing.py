"""Packing benchmark: N small trainings through the task runner, one process per run vs M runs per process
vs K processes per task; trainings per hour and the ratio to one run per process, measured in one go.

    python bench/packing.py [--runs 8] [--epochs 5]

On a CPU-only machine the GPU-sharing effect cannot show; what shows is the sequential part (the
framework import and start-up paid once per process instead of once per run).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpcjobs import layout, manifest
from hpcjobs.spec import expand, parse_spec


def make_sweep(root: Path, runs: int, epochs: int) -> tuple[layout.SweepDir, list[str]]:
    doc = {
        "name": "pack",
        "data": {"source": "moons"},
        "model": {"hidden": [16]},
        "train": {"epochs": epochs, "batch_size": 32},
        "sweep": {"seeds": list(range(runs))},
    }
    spec = parse_spec(doc)
    sweep = layout.SweepDir(root / "pack")
    todo = expand(spec)
    for run in todo:
        layout.write_json(sweep.config(run.run_id), run.config(spec.name, spec.backend))
    manifest.write(sweep, manifest.Manifest.new(spec.name, spec.backend, todo, spec.slurm))
    return sweep, [r.run_id for r in todo]


def clear(sweep: layout.SweepDir, run_ids: list[str]) -> None:
    for run_id in run_ids:
        for path in (sweep.result(run_id), sweep.history(run_id)):
            path.unlink(missing_ok=True)


def one_process_per_run(sweep: layout.SweepDir, run_ids: list[str]) -> None:
    """What runs_per_task = 1 costs: every run pays Python, TensorFlow and Keras start-up."""
    for run_id in run_ids:
        subprocess.run(
            [sys.executable, "-m", "hpcjobs", "run", str(sweep.root), run_id],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def one_task(sweep: layout.SweepDir, run_ids: list[str], parallel: int) -> None:
    """One array task holding every run, trained by `parallel` processes (a separate Python, as on a node)."""
    code = f"from hpcjobs.worker import Task; Task({str(sweep.root)!r}, {tuple(run_ids)!r}, {parallel})()"
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with tempfile.TemporaryDirectory() as tmp:
        sweep, run_ids = make_sweep(Path(tmp), args.runs, args.epochs)
        n = len(run_ids)
        cases = [
            ("runs_per_task=1, trials_per_gpu=1", lambda: one_process_per_run(sweep, run_ids)),
            (f"runs_per_task={n}, trials_per_gpu=1", lambda: one_task(sweep, run_ids, 1)),
            (f"runs_per_task={n // 4}, trials_per_gpu=4", lambda: one_task(sweep, run_ids, 4)),
            (f"runs_per_task={n // 8}, trials_per_gpu=8", lambda: one_task(sweep, run_ids, 8)),
        ]
        rows = []
        for label, fn in cases:
            clear(sweep, run_ids)
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            done = sum(1 for r in run_ids if layout.read_json(sweep.result(r))["status"] == "COMPLETED")
            assert done == n, f"{label}: {done}/{n} runs completed"
            rows.append((label, seconds, n / seconds * 3600))
    base = rows[0][2]
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}, KERAS_BACKEND={os.environ['KERAS_BACKEND']}"
    print(f"# packing: {n} moons runs × {args.epochs} epochs, {machine}")
    print(f"{'case':38} {'wall s':>8} {'trainings/h':>12} {'ratio':>6}")
    for label, seconds, per_hour in rows:
        print(f"{label:38} {seconds:8.1f} {per_hour:12.0f} {per_hour / base:6.2f}")


if __name__ == "__main__":
    main()
