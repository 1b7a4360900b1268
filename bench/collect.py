"""How long `collect` takes on a big sweep, next to the obvious pandas loop over the same files.

Generates a finished-looking sweep folder (10,000 runs × 30 epochs by default, 1 % unfinished, 1 %
diverged, 1 % resumed) in a temporary directory, then times, interleaved on warm files so that a busy
machine slows all contenders alike:
  - hpcjobs.collect.collect(sweep): runs table, long-form epochs table and per-configuration summary,
  - `hpcjobs collect NAME --format csv` in-process: the above plus summary.csv, selection and output,
  - pd.concat(pd.read_csv(f) for f in files): the loop people write by hand (the epochs table only).

    python bench/collect.py [--runs 10000] [--epochs 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from hpcjobs import collect, layout, manifest
from hpcjobs.cli import cli
from hpcjobs.spec import expand, load_spec

COLUMNS = (
    "epoch,categorical_accuracy,loss,mean_absolute_error,mean_squared_error,"
    "val_categorical_accuracy,val_loss,val_mean_absolute_error,val_mean_squared_error"
)
HIDDEN = [[n] * depth for depth in range(1, 6) for n in (8, 16, 32, 64, 128)]  # 25 architectures


def _spec_text(runs: int) -> str:
    """A sweep file with `runs` runs: 25 architectures × N learning rates × 4 seeds."""
    rates = [round(1e-4 * (i + 1), 6) for i in range(max(1, runs // (len(HIDDEN) * 4)))]
    return (
        'name = "bench"\n[data]\nsource = "digits"\n[train]\nepochs = 30\n'
        'metrics = ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"]\n'
        f'[sweep]\n"model.hidden" = {json.dumps(HIDDEN)}\n"train.learning_rate" = {rates}\n'
        "seeds = [0, 1, 2, 3]\n"
    )


def _history(rng: np.random.Generator, epochs: int, resumed: bool) -> str:
    values = rng.random((epochs, 8)).astype(np.float32).astype(np.float64)  # Keras logs float32s
    lines = [COLUMNS] + [f"{e}," + ",".join(map(repr, row)) for e, row in enumerate(values.tolist())]
    if resumed:  # a requeued run repeats the epochs after its last backup
        lines += lines[epochs - 4 :]
    return "\n".join(lines) + "\n"


def _result(run: dict, status: str, rng: np.random.Generator) -> dict:
    test = dict(
        zip(("accuracy", "f1_macro", "precision_macro", "recall_macro", "loss"), rng.random(5), strict=True)
    )
    return {
        "status": status,
        "run_id": run["run_id"],
        "config": run["settings"],
        "params": 1000 + len(run["settings"]["model"]["hidden"]) * 500,
        "seconds_per_epoch": 0.3,
        "samples_per_second": 2300.0,
        "precision_policy": "float32",
        "device": "cuda:0",
        "best_epoch": 7,
        "versions": {"keras": "3.5.0", "tensorflow": "2.17.0", "numpy": "1.26.4", "python": "3.11"},
        "test": {k: float(v) for k, v in test.items()},
    }


def make_sweep(root: Path, runs: int, epochs: int) -> tuple[layout.SweepDir, list[Path]]:
    """Writes files directly (not atomically): the folder is scratch and only the reading is timed."""
    spec_file = root / "bench.toml"
    spec_file.write_text(_spec_text(runs))
    spec = load_spec(spec_file)
    sweep = layout.SweepDir(root / spec.name)
    man = manifest.Manifest.new(spec.name, spec.backend, expand(spec), spec.slurm)
    manifest.write(sweep, man)
    rng = np.random.default_rng(0)
    files = []
    for i, run in enumerate(r.to_dict() for r in man.runs):  # each run's row, as the manifest holds it
        # 1 % unfinished (no result yet, half the epochs), 1 % diverged, 1 % resumed after a requeue.
        unfinished, diverged, resumed = i % 100 == 0, i % 100 == 1, i % 100 == 2
        run_dir = sweep.run_dir(run["run_id"])
        run_dir.mkdir(parents=True)
        history = sweep.history(run["run_id"])
        history.write_text(_history(rng, epochs // 2 if unfinished else epochs, resumed))
        files.append(history)
        if not unfinished:
            status = "DIVERGED" if diverged else "COMPLETED"
            sweep.result(run["run_id"]).write_text(json.dumps(_result(run, status, rng), indent=2))
    return sweep, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions; the median is shown")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep, files = make_sweep(Path(tmp), args.runs, args.epochs)
        print(f"generated {len(files)} runs × {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
        for path in sweep.root.glob("runs/*/*.*"):  # warm the page cache for all contenders alike
            path.read_bytes()
        col = collect.collect(sweep)
        assert len(col.runs) == len(files) and not col.problems, "collect did not read the sweep"

        def cli_csv() -> None:
            result = CliRunner().invoke(cli, ["collect", str(sweep.root), "--format", "csv"])
            assert result.exit_code == 0, result.output

        contenders = {
            "hpcjobs.collect.collect(sweep)": lambda: collect.collect(sweep),
            "hpcjobs collect NAME --format csv": cli_csv,
            "pd.concat(pd.read_csv(f) for f in files)": lambda: pd.concat(map(pd.read_csv, files)),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            for name, fn in contenders.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        load_after = os.getloadavg()[0]

    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline = medians["pd.concat(pd.read_csv(f) for f in files)"]
    print(
        f"\n{len(files)} runs × {args.epochs} epochs, {len(col.summary)} configurations, "
        f"{len(col.epochs)} epoch rows; median of {args.repeat} interleaved runs; {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} before, {load_after:.1f} after; "
        f"Python {platform.python_version()}, pandas {pd.__version__}\n"
    )
    print("| what | median s | min s | pandas loop ÷ this |")
    print("|---|---:|---:|---:|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} | {min(times[name]):.2f} | {baseline / seconds:.1f}× |")


if __name__ == "__main__":
    main()
