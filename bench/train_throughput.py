"""Training throughput: the lesson's plain Keras fit next to the hpcjobs training task's fit path.

The lesson MLP (784-256-128-10) on seeded random MNIST-sized data (60,000 × 784 float32, 10 classes, and a
tenth as many validation samples), with the same batch size, epochs, optimizer, learning rate, metrics and
validation data on both sides:
  - plain: the lesson's way, default compile() and fit() from NumPy arrays,
  - hpcjobs: hpcjobs' own functions (models: seeding, compile; plan: precision policy, execution plan; train:
    callbacks with their history and backup files in a temporary folder, fit), as train_run calls them.

Each measurement runs in a fresh Python process and the sides alternate, so neither inherits the other's
compiled functions or global state (TensorFlow's op determinism, which the task turns on, cannot be turned
off). The first epoch (tracing and compilation) is reported apart; throughput is training samples over the
median time of the later epochs, validation included. The table gives the median over repeats.

    KERAS_BACKEND=tensorflow python bench/train_throughput.py [--samples 60000] [--epochs 4] [--repeats 3]
    KERAS_BACKEND=jax python bench/train_throughput.py          # on a GPU machine: bench/gpu.sh
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

SIDES = ("plain", "hpcjobs")
FEATURES, CLASSES, HIDDEN = 784, 10, [256, 128]


def measure(side: str, samples: int, epochs: int, batch_size: int, precision: str) -> dict[str, Any]:
    """One fit of one side in this process: per-epoch seconds and the settings it ran with."""
    import keras
    import numpy as np

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc]
        """Epoch hooks only: a batch hook would make Keras wait for every execution."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    rng = np.random.default_rng(0)
    x = rng.random((samples, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, samples)
    x_val = rng.random((samples // 10, FEATURES), dtype=np.float32)
    y_val = rng.integers(0, CLASSES, samples // 10)
    clock = EpochClock()
    backend = keras.backend.backend()
    if side == "plain":
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.Dense(HIDDEN[0], activation="relu"),
                keras.layers.Dense(HIDDEN[1], activation="relu"),
                keras.layers.Dense(CLASSES, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        onehot = keras.utils.to_categorical
        # verbose=0 on both sides: a progress bar measures the terminal, not the training.
        model.fit(
            x,
            onehot(y, CLASSES),
            validation_data=(x_val, onehot(y_val, CLASSES)),
            epochs=epochs,
            batch_size=batch_size,
            callbacks=[clock],
            verbose=0,
        )
        settings = {"jit_compile": model.jit_compile}
    else:
        from hpcjobs import models, plan, splits, train
        from hpcjobs.settings import TrainSettings
        from hpcjobs.vocab import Objective

        # The same arrays as the plain side's, as a run's source and partition (no test part, no scaling).
        source = train.Source(np.concatenate([x, x_val]), np.concatenate([y, y_val]), CLASSES)
        rows = np.arange(len(source.x))
        unscaled = (np.zeros(FEATURES, np.float32), np.ones(FEATURES, np.float32))
        ready = train.Dataset(source, splits.Partition(rows[:samples], rows[samples:], rows[:0], *unscaled))
        cfg = TrainSettings(epochs=epochs, batch_size=batch_size, metrics=("accuracy",), precision=precision)
        models.seed_everything(0, backend)
        device, capability = models.probe_device(backend)
        policy = plan.choose_policy(precision, capability)
        objective = Objective.for_metrics(cfg.metrics)
        execution = plan.plan_execution(cfg, backend, samples)
        keras.mixed_precision.set_dtype_policy(policy)
        model = models.build_model(FEATURES, CLASSES, HIDDEN, "relu", 0.0)
        models.compile_model(model, cfg, execution)
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            _, _, callbacks = train.training_callbacks(
                "bench", cfg, objective, Path(tmp) / "history.csv", Path(tmp) / "backup"
            )
            train.fit_model(
                model,
                ready,
                cfg,
                execution,
                [*callbacks, clock],
                seed=0,
            )
        settings = {"device": device, "policy": policy, **asdict(execution)}
    return {"side": side, "backend": backend, "epoch_seconds": clock.seconds, **settings}


def steady_rate(samples: int, epoch_seconds: list[float]) -> float:
    """Training samples per second over the median epoch after the first (compilation) one."""
    return samples / statistics.median(epoch_seconds[1:])


def run_one(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """measure() in a fresh interpreter; its last stdout line is the JSON result."""
    command = [
        sys.executable,
        __file__,
        "--one",
        side,
        *("--samples", str(args.samples), "--epochs", str(args.epochs)),
        *("--batch-size", str(args.batch_size), "--precision", args.precision),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"{side} measurement failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def table(results: list[dict[str, Any]], samples: int) -> str:
    rates = {
        side: [steady_rate(samples, r["epoch_seconds"]) for r in results if r["side"] == side]
        for side in SIDES
    }
    lines = [f"{'side':8} {'samples/s':>10} {'min..max':>17} {'1st epoch s':>11}  settings"]
    for side in SIDES:
        runs = [r for r in results if r["side"] == side]
        first = statistics.median(r["epoch_seconds"][0] for r in runs)
        settings = {k: v for k, v in runs[0].items() if k not in ("side", "backend", "epoch_seconds")}
        spread = f"{min(rates[side]):,.0f}..{max(rates[side]):,.0f}"
        lines.append(
            f"{side:8} {statistics.median(rates[side]):>10,.0f} {spread:>17} {first:>11.2f}  {settings}"
        )
    pairs = [h / p for p, h in zip(rates["plain"], rates["hpcjobs"], strict=True)]
    ratio = statistics.median(rates["hpcjobs"]) / statistics.median(rates["plain"])
    lines.append(f"ratio hpcjobs/plain: {ratio:.2f}x (per repeat: {', '.join(f'{r:.2f}' for r in pairs)})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=4, help="at least 2: the first one is reported apart")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto", help="train.precision of the hpcjobs side")
    parser.add_argument(
        "--one", choices=SIDES, help=argparse.SUPPRESS
    )  # a child process's single measurement
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2")
    if args.one:
        print(json.dumps(measure(args.one, args.samples, args.epochs, args.batch_size, args.precision)))
        return

    results = []
    for repeat in range(args.repeats):
        # Alternate which side goes first, so that a drift in the machine's speed favours neither.
        for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
            results.append(run_one(side, args))
            rate = steady_rate(args.samples, results[-1]["epoch_seconds"])
            print(f"repeat {repeat + 1}/{args.repeats} {side}: {rate:,.0f} samples/s", flush=True)
    backend = results[0]["backend"]
    print(
        f"\nbackend {backend}, {args.samples:,} samples × {FEATURES}, batch {args.batch_size}, "
        f"{args.epochs} epochs (first apart), median of {args.repeats} repeats"
    )
    print(table(results, args.samples))


if __name__ == "__main__":
    main()
