"""The training task: one run of a sweep, from its config.json to its history.csv and result.json.

The only module of the package that imports Keras. The caller sets os.environ["KERAS_BACKEND"] before
importing it. Exceptions propagate on purpose: the worker that calls train_run records failures.
"""

from __future__ import annotations

import importlib
import math
import platform
import time
from datetime import datetime, timezone
from typing import Any

import keras
import numpy as np
import pandas as pd

from hpcjobs import data, scores
from hpcjobs.layout import SweepDir, read_json, write_json

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "nadam": keras.optimizers.Nadam,
    "adagrad": keras.optimizers.Adagrad,
}
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def train_run(sweep: SweepDir, run_id: str) -> dict[str, Any]:
    """Train the run described by its config.json; write and return its result.json."""
    config = read_json(sweep.config(run_id))
    started = _now()
    backend = keras.backend.backend()
    if config["backend"] != backend:
        raise RuntimeError(
            f"Expected the Keras backend of the config, {config['backend']!r}. Received: {backend!r} "
            "(KERAS_BACKEND must be set before keras is first imported)"
        )
    # Several runs may train one after another in one worker process: start each from a clean slate.
    keras.backend.clear_session()
    seed_everything(int(config["seed"]), backend)

    data_cfg, model_cfg, train_cfg = config["data"], config["model"], config["train"]
    x, y = data.load(data_cfg["source"])
    n_classes = data.check_labels(y, data_cfg["source"])
    parts = data.split(x, y, data_cfg["test_fraction"], data_cfg["validation_fraction"], int(config["seed"]))
    device, capability = probe_device(backend)
    policy = choose_policy(train_cfg["precision"], capability)
    monitor, mode = choose_monitor(train_cfg["metrics"])

    history_path, backup_dir = sweep.history(run_id), sweep.backup_dir(run_id)
    if not backup_dir.exists():
        # No backup means training starts at epoch 0: rows left by an earlier attempt would otherwise
        # outlive it (e.g. a rerun that stops earlier than the first one did).
        history_path.unlink(missing_ok=True)

    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = build_model(
            parts.x_train.shape[1],
            n_classes,
            hidden=list(model_cfg["hidden"]),
            activation=model_cfg["activation"],
            dropout=float(model_cfg["dropout"]),
        )
        # Given a plain optimizer, compile() wraps it in LossScaleOptimizer itself when the model's
        # policy is mixed_float16 (keras 3 auto_scale_loss=True): wrapping here would be redundant.
        model.compile(
            optimizer=OPTIMIZERS[train_cfg["optimizer"]](learning_rate=train_cfg["learning_rate"]),
            loss="categorical_crossentropy",
            metrics=list(train_cfg["metrics"]),
        )
        divergence = DivergenceStop()
        # CSVLogger before BackupAndRestore: a kill between the two repeats an epoch row (deduplicated when
        # read back) instead of losing one.
        callbacks: list[keras.callbacks.Callback] = [
            divergence,
            keras.callbacks.CSVLogger(str(history_path), append=True),
            keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=True),
        ]
        patience = int(train_cfg["early_stopping_patience"])
        if patience > 0:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor, mode=mode, patience=patience, restore_best_weights=True
                )
            )
        callbacks.append(EpochLine(run_id, int(train_cfg["epochs"]), monitor))

        onehot = keras.utils.to_categorical
        clock = time.perf_counter()
        fit = model.fit(
            parts.x_train,
            onehot(parts.y_train, num_classes=n_classes),
            validation_data=(parts.x_val, onehot(parts.y_val, num_classes=n_classes)),
            epochs=int(train_cfg["epochs"]),
            batch_size=int(train_cfg["batch_size"]),
            callbacks=callbacks,
            verbose=0,
        )
        seconds = time.perf_counter() - clock

        batch_size = int(train_cfg["batch_size"])
        evaluated = model.evaluate(
            parts.x_test,
            onehot(parts.y_test, num_classes=n_classes),
            batch_size=batch_size,
            verbose=0,
            return_dict=True,
        )
        predicted = model.predict(parts.x_test, batch_size=batch_size, verbose=0).argmax(axis=1)
        test = {**evaluated, **scores.macro_scores(parts.y_test, predicted, n_classes)}
        params = model.count_params()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")

    result = build_result(
        config,
        summarize_history(pd.read_csv(history_path), monitor, mode),
        diverged_epoch=divergence.diverged_epoch,
        test=test,
        params=params,
        session_epochs=len(fit.epoch),
        session_seconds=seconds,
        n_train=len(parts.x_train),
        precision_policy=policy,
        backend=backend,
        device=device,
        versions=versions(backend),
        started=started,
        finished=_now(),
    )
    write_json(sweep.result(run_id), result)
    return result


def seed_everything(seed: int, backend: str) -> None:
    """Same config + seed on CPU gives the same history (Python, NumPy and backend RNGs)."""
    keras.utils.set_random_seed(seed)
    if backend == "tensorflow":
        import tensorflow as tf

        # Cheap for an MLP, and makes GPU reductions reproducible too.
        tf.config.experimental.enable_op_determinism()


def choose_policy(requested: str, compute_capability: tuple[int, int] | None) -> str:
    """The dtype policy: an explicit request as is; "auto" from the GPU's compute capability.

    bfloat16 needs Ampere (8.0) or newer and needs no loss scaling; Volta/Turing (7.x) have float16 tensor
    cores; CPUs and older GPUs gain nothing from mixed precision.
    """
    if requested in POLICIES:
        return requested
    if requested != "auto":
        raise ValueError(f"Expected precision among auto, {', '.join(POLICIES)}. Received: {requested!r}")
    if compute_capability is None:
        return "float32"
    if compute_capability >= (8, 0):
        return "mixed_bfloat16"
    if compute_capability >= (7, 0):
        return "mixed_float16"
    return "float32"


def probe_device(backend: str) -> tuple[str, tuple[int, int] | None]:
    """("cpu", None), or the first GPU's name and compute capability."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu", None
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        return details.get("device_name", gpus[0].name), tuple(capability) if capability else None
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "gpu":
            return device.platform, None
        major, minor = str(device.compute_capability).split(".")
        return device.device_kind, (int(major), int(minor))
    return "unknown", None


def choose_monitor(metrics: list[str]) -> tuple[str, str]:
    """The validation metric that picks the best epoch (and drives early stopping), and its direction."""
    for name in ("categorical_accuracy", "accuracy"):
        if name in metrics:
            return f"val_{name}", "max"
    return "val_loss", "min"


def build_model(
    n_features: int, n_classes: int, hidden: list[int], activation: str, dropout: float
) -> keras.Sequential:
    """The MLP, under the current global dtype policy, except the softmax output which stays float32:
    a float16 softmax rounds small probabilities to 0 and the cross-entropy to inf."""
    layers: list[Any] = [keras.Input((n_features,))]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", dtype="float32"))
    return keras.Sequential(layers)


class DivergenceStop(keras.callbacks.Callback):  # type: ignore[misc]  # keras is untyped
    """Stops at the first NaN/inf loss and records the (1-based) epoch.

    keras.callbacks.TerminateOnNaN stops too, but fit() then returns normally and the run would look
    COMPLETED. Checking each batch costs nothing extra: BackupAndRestore already makes batch callbacks
    synchronous, with the logs converted to Python floats.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.diverged_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(logs)

    def _check(self, logs: dict | None) -> None:
        loss = (logs or {}).get("loss")
        if self.diverged_epoch is None and loss is not None and not math.isfinite(loss):
            self.diverged_epoch = self.epoch + 1
            self.model.stop_training = True


class EpochLine(keras.callbacks.Callback):  # type: ignore[misc]
    """One short line per epoch on stdout (the job log), instead of Keras' per-batch progress bar."""

    def __init__(self, run_id: str, epochs: int, monitor: str) -> None:
        super().__init__()
        self.run_id, self.epochs, self.monitor = run_id, epochs, monitor
        self.clock = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.clock = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        seconds = time.perf_counter() - self.clock
        print(
            f"{self.run_id} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', math.nan):.4g}, "
            f"{self.monitor} {logs.get(self.monitor, math.nan):.4g} ({seconds:.1f} s)",
            flush=True,
        )


def summarize_history(history: pd.DataFrame, monitor: str, mode: str) -> dict[str, Any]:
    """epochs_done, best_epoch (1-based), best (val_* at the best epoch) and final_loss from history.csv.

    A resumed run may repeat an epoch (killed after logging it but before backing it up): the last row of
    each epoch wins.
    """
    rows = history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    values = rows[monitor] if monitor in rows else pd.Series(dtype=float)
    if values.notna().any():
        best_row = rows.loc[values.idxmax() if mode == "max" else values.idxmin()]
        best_epoch: int | None = int(best_row["epoch"]) + 1
        best = {name: _finite(best_row[name]) for name in rows.columns if name.startswith("val_")}
    else:
        best_epoch, best = None, {}
    return {
        "epochs_done": len(rows),
        "best_epoch": best_epoch,
        "monitor": monitor,
        "best": best,
        "final_loss": _finite(rows["loss"].iloc[-1]) if len(rows) else None,
    }


def build_result(
    config: dict[str, Any],
    summary: dict[str, Any],
    *,
    diverged_epoch: int | None,
    test: dict[str, float],
    params: int,
    session_epochs: int,
    session_seconds: float,
    n_train: int,
    precision_policy: str,
    backend: str,
    device: str,
    versions: dict[str, str],
    started: str,
    finished: str,
) -> dict[str, Any]:
    """The result.json content. NaN/inf become null: the JSON stays strict and a diverged run stays readable.

    Throughput covers this session only (a resumed run trained fewer epochs in this process).
    """
    return {
        "run_id": config["run_id"],
        "status": "DIVERGED" if diverged_epoch is not None else "COMPLETED",
        "epochs": int(config["train"]["epochs"]),
        **summary,
        "test": {name: _finite(value) for name, value in test.items()},
        "params": params,
        "seconds_per_epoch": session_seconds / session_epochs if session_epochs else None,
        "samples_per_second": n_train * session_epochs / session_seconds if session_epochs else None,
        "precision_policy": precision_policy,
        "backend": backend,
        "device": device,
        "versions": versions,
        "seed": int(config["seed"]),
        "diverged_epoch": diverged_epoch,
        "started": started,
        "finished": finished,
        "config": config,
    }


def versions(backend: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    if backend in ("tensorflow", "jax"):
        found[backend] = importlib.import_module(backend).__version__
    return found


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
