"""Packing benchmark: N lesson-MLP trainings (784-256-128-10 on N_SAMPLES × 784 synthetic data, 5 epochs)
through the project's task runner, one process per run against the new default and each ingredient alone.

    KERAS_BACKEND=tensorflow python bench/packing.py [--runs 8 32] [--samples 60000] [--epochs 5]
    KERAS_BACKEND=jax python bench/packing.py ...          # on a GPU machine: bench/gpu.sh

Cases, each from a clean sweep folder (results, histories and compilation cache removed):
  per-run        a process per run, nothing reused (runs_per_task = 1, trials_per_gpu = 1), no cache
  in turn        one process trains every run in turn, a model built and compiled per run (the old way)
  + reuse        the same, compiling once per program (models.CompiledModels), no cache
  + cache        a process per run with the sweep's persistent compilation cache (JAX only)
  K=k            one task of k processes sharing the machine (the GPU), reuse and cache on
  default        what the local executor does here: one process per core (a task each), reuse and cache
The JAX cases set train.population = "off" (bench/population.py measures populations); "default, populations"
adds the population default on JAX.

Per-run overhead: process-seconds per run not spent training = (wall × processes − Σ training) / runs, where
a run's training is its later epochs' seconds scaled to all its epochs (the first epoch is start-up). For the
runs in turn in one process, "reused overhead" is the median over runs that reused the model of wall_seconds
minus that training estimate: what the compile-once target (≤ 1 s) is about.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hpcjobs import layout, manifest
from hpcjobs.spec import expand, parse_spec
from hpcjobs.vocab import lanes
from hpcjobs.worker import LANE_COMMAND

REPO = Path(__file__).resolve().parent.parent
NO_REUSE = "from hpcjobs import models; models.CompiledModels.holds = lambda self, key: False\n"
NO_CACHE = {"JAX_ENABLE_COMPILATION_CACHE": "false"}


def make_sweep(root: Path, runs: int, samples: int, epochs: int, backend: str) -> layout.SweepDir:
    rng = np.random.default_rng(0)
    npz = root / "lesson.npz"
    np.savez(npz, x=rng.random((samples, 784), dtype=np.float32), y=rng.integers(0, 10, samples))
    doc = {
        "name": "pack",
        "backend": backend,
        "data": {"source": str(npz), "test_fraction": 0.1, "validation_fraction": 0.1},
        "model": {"hidden": [256, 128]},
        "train": {"epochs": epochs, "batch_size": 128, "population": "off"},
        "sweep": {"seeds": list(range(runs))},
    }
    spec = parse_spec(doc)
    sweep = layout.SweepDir(root / "pack")
    todo = expand(spec)
    for run in todo:
        layout.write_config(sweep, run.config(spec.name, spec.backend))
    manifest.write(sweep, manifest.Manifest.new(spec.name, spec.backend, todo, spec.slurm))
    return sweep


def set_population(sweep: layout.SweepDir, run_ids: list[str], mode: str) -> None:
    for run_id in run_ids:
        config = layout.read_json(sweep.config(run_id))
        config["train"]["population"] = mode
        layout.write_json(sweep.config(run_id), config)


def clear(sweep: layout.SweepDir, run_ids: list[str]) -> None:
    for run_id in run_ids:
        shutil.rmtree(sweep.run_dir(run_id) / "backup", ignore_errors=True)
        for path in (sweep.result(run_id), sweep.history(run_id)):
            path.unlink(missing_ok=True)
    shutil.rmtree(sweep.compile_cache, ignore_errors=True)


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


def lane_processes(
    sweep: layout.SweepDir, groups: list[list[str]], extra: dict[str, str], code: str = ""
) -> None:
    """Each group in a process of its own, all at once, started as a task starts its lanes."""
    command = [sys.executable, "-c", code + LANE_COMMAND[1]] if code else [sys.executable, *LANE_COMMAND]
    procs = [
        subprocess.Popen([*command, str(sweep.root), *group], env=env(extra), stdout=subprocess.DEVNULL)
        for group in groups
    ]
    for proc in procs:
        proc.wait()


def per_run(sweep: layout.SweepDir, run_ids: list[str], extra: dict[str, str]) -> None:
    for run_id in run_ids:
        lane_processes(sweep, [[run_id]], extra)


def task(sweep: layout.SweepDir, run_ids: list[str], parallel: int) -> None:
    """One array task of `parallel` processes, as a node runs it (worker.Task, shared-GPU environment)."""
    code = f"from hpcjobs.worker import Task; Task({str(sweep.root)!r}, {tuple(run_ids)!r}, {parallel})()"
    subprocess.run([sys.executable, "-c", code], check=True, env=env(), stdout=subprocess.DEVNULL)


def measure(sweep: layout.SweepDir, run_ids: list[str], epochs: int, run: object, processes: int) -> dict:
    clear(sweep, run_ids)
    start = time.perf_counter()
    run()  # type: ignore[operator]
    wall = time.perf_counter() - start
    results = [layout.read_json(sweep.result(r)) for r in run_ids if sweep.result(r).is_file()]
    done = sum(1 for r in results if r["status"] == "COMPLETED")
    assert done == len(run_ids), f"{done}/{len(run_ids)} runs completed"
    scale = epochs / (epochs - 1)
    trained = [r["training_seconds"] * scale for r in results]
    reused = [r["wall_seconds"] - t for r, t in zip(results, trained, strict=True) if r.get("reused_model")]
    return {
        "wall": wall,
        "per_hour": len(run_ids) / wall * 3600,
        "overhead": (wall * processes - sum(trained)) / len(run_ids),
        "reused_overhead": statistics.median(reused) if reused else None,
        "startup": statistics.median(r["startup_seconds"] for r in results),
        "samples_per_s": statistics.median(r["samples_per_second"] for r in results),
    }


def cases(sweep: layout.SweepDir, run_ids: list[str], backend: str) -> list[tuple[str, int, object]]:
    jax = backend == "jax"
    cores = os.cpu_count() or 1
    out: list[tuple[str, int, object]] = [
        ("per-run (no packing)", 1, lambda: per_run(sweep, run_ids, NO_CACHE)),
        ("in turn, compiled per run", 1, lambda: lane_processes(sweep, [run_ids], NO_CACHE, NO_REUSE)),
        ("in turn + reuse", 1, lambda: lane_processes(sweep, [run_ids], NO_CACHE)),
    ]
    if jax:
        out.append(("per-run + cache", 1, lambda: per_run(sweep, run_ids, {})))
    for k in (4, 8):
        out.append((f"K={k} processes, reuse + cache", k, lambda k=k: task(sweep, run_ids, k)))
    default = lanes(run_ids, cores)
    out.append(
        (
            f"default: {len(default)} lanes, reuse + cache",
            len(default),
            lambda: lane_processes(sweep, default, {}),
        )
    )
    if jax:

        def populations() -> None:
            set_population(sweep, run_ids, "auto")
            try:
                lane_processes(sweep, default, {})
            finally:
                set_population(sweep, run_ids, "off")

        out.append((f"default, populations: {len(default)} lanes", len(default), populations))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated case numbers (0-based) to run")
    args = parser.parse_args()
    backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}, KERAS_BACKEND={backend}"
    for n in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = make_sweep(Path(tmp), n, args.samples, args.epochs, backend)
            run_ids = manifest.read(sweep).run_ids
            chosen = cases(sweep, run_ids, backend)
            if args.only:
                chosen = [chosen[int(i)] for i in args.only.split(",")]
            rows = []
            for label, processes, run in chosen:
                rows.append((label, measure(sweep, run_ids, args.epochs, run, processes)))
                print(f"  {label}: {rows[-1][1]['wall']:.1f} s", file=sys.stderr, flush=True)
        base = rows[0][1]["per_hour"]
        print(f"# packing: {n} lesson-MLP runs × {args.epochs} epochs × {args.samples} samples, {machine}")
        print(
            f"{'case':40} {'wall s':>7} {'trainings/h':>11} {'ratio':>6} {'overhead/run s':>14} "
            f"{'reused overhead s':>17} {'start-up s':>10} {'samples/s':>9}"
        )
        for label, m in rows:
            reused = f"{m['reused_overhead']:.2f}" if m["reused_overhead"] is not None else "-"
            print(
                f"{label:40} {m['wall']:7.1f} {m['per_hour']:11.0f} {m['per_hour'] / base:6.2f} "
                f"{m['overhead']:14.2f} {reused:>17} {m['startup']:10.2f} {m['samples_per_s']:9.0f}"
            )


if __name__ == "__main__":
    main()
