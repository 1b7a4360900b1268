"""Population benchmark: N seeds of one MLP on JAX as one population vs the same runs in turn in one process
vs one process per run, each process started as a task starts its lanes (worker.LANE_COMMAND), and vs the
same trainings as a plain Keras loop in one process (bench/plain_loop.py: the vmap probe's baseline, Keras
fits in turn); wall clock including start-up (imports, data, compilation), measured side by side in one go.

    KERAS_BACKEND=jax python bench/population.py --config digits --seeds 8 32
    KERAS_BACKEND=jax python bench/population.py --config lesson --samples 6000 --epochs 3 --seeds 8 32

digits: scikit-learn's 8×8 digits, hidden [64, 32], adam 1e-3, batch 128 (the vmap probe's setting).
lesson: the lesson MLP 784-256-128-10 on seeded synthetic data (--samples × 784, 10 classes from a random
linear teacher), adam 1e-3, batch 128. One process per run is timed for --per-process runs (all by default)
and scaled to N when fewer, which the table says.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hpcjobs import layout, manifest
from hpcjobs.spec import expand, parse_spec
from hpcjobs.worker import LANE_COMMAND

REPO = Path(__file__).resolve().parent.parent


def lesson_data(root: Path, samples: int) -> str:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 784)).astype(np.float32)
    y = (x @ rng.normal(size=(784, 10))).argmax(axis=1)
    path = root / "lesson.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def make_sweep(root: Path, name: str, args: argparse.Namespace, seeds: int, population: str) -> list[str]:
    lesson = args.config == "lesson"
    doc: dict[str, Any] = {
        "name": name,
        "backend": "jax",
        "data": {"source": lesson_data(root, args.samples) if lesson else "digits"},
        "model": {"hidden": [256, 128] if lesson else [64, 32]},
        "train": {"epochs": args.epochs, "batch_size": 128, "population": population},
        "sweep": {"seeds": list(range(seeds))},
    }
    (root / f"{name}.json").write_text(json.dumps(doc))  # the plain loop's sweep file
    spec = parse_spec(doc)
    sweep = layout.SweepDir(root / name)
    runs = expand(spec)
    for run in runs:
        layout.write_config(sweep, run.config(spec.name, spec.backend))
    manifest.write(sweep, manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm))
    return [r.run_id for r in runs]


def timed_run(sweep: Path, run_ids: list[str]) -> float:
    return timed([*LANE_COMMAND, str(sweep), *run_ids])


def timed(arguments: list[str]) -> float:
    # The repository first, then whatever the caller put on the path (bench/gpu.sh: its offline wheels).
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "jax"}
    clock = time.perf_counter()
    proc = subprocess.run([sys.executable, *arguments], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - clock
    if proc.returncode != 0:
        sys.exit(f"{' '.join(arguments[:2])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds


def final_val(sweep: Path, run_ids: list[str]) -> float:
    best = [
        layout.read_json(layout.SweepDir(sweep).result(r))["best"]["val_categorical_accuracy"]
        for r in run_ids
    ]
    return float(np.mean(best))


def bench(args: argparse.Namespace, seeds: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = {
            mode: make_sweep(root, mode, args, seeds, "off" if mode != "population" else "auto")
            for mode in ("population", "in_turn", "per_process")
        }
        population = timed_run(root / "population", ids["population"])
        in_turn = timed_run(root / "in_turn", ids["in_turn"])
        measured = ids["per_process"][: args.per_process or seeds]
        per_process = sum(timed_run(root / "per_process", [r]) for r in measured) * seeds / len(measured)
        plain_loop = [str(REPO / "bench" / "plain_loop.py"), str(root / "in_turn.json")]
        plain = timed(plain_loop) if args.plain else None
        scaled = "" if len(measured) == seeds else f" (timed {len(measured)}, ×{seeds / len(measured):g})"
        acc = {m: final_val(root / m, ids[m][: len(measured)] if m == "per_process" else ids[m]) for m in ids}
    rows: list[tuple[str, float, float | None]] = [
        ("one population", population, acc["population"]),
        ("runs in turn, one process", in_turn, acc["in_turn"]),
        (f"one process per run{scaled}", per_process, acc["per_process"]),
    ]
    if plain is not None:
        rows.append(("plain Keras loop, one process", plain, None))
    lines = [
        f"\n{seeds} seeds, {args.config}, {args.epochs} epochs"
        + (f", {args.samples} samples" if args.config == "lesson" else "")
    ]
    lines.append("| side | wall s | ÷ population | best val acc (mean) |")
    lines.append("|---|---:|---:|---:|")
    lines += [
        f"| {name} | {s:.1f} | {s / population:.1f}× | {'-' if a is None else f'{a:.3f}'} |"
        for name, s, a in rows
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=("digits", "lesson"), default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=60_000, help="lesson only: synthetic samples")
    parser.add_argument(
        "--per-process", type=int, default=0, help="time this many one-run processes (0: all)"
    )
    parser.add_argument(
        "--no-plain", dest="plain", action="store_false", help="leave out the plain Keras loop (GPU time)"
    )
    args = parser.parse_args()
    import jax

    print(
        f"{time.ctime()} on {platform.node()}: Python {platform.python_version()}, jax {jax.__version__}, "
        f"{jax.devices()[0].platform}, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for seeds in args.seeds:
        print("\n".join(bench(args, seeds)), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
