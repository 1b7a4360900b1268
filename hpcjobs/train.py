"""The training task: one run of a sweep, from its config.json to its history.csv and result.json.

Compute side only: the caller sets os.environ["KERAS_BACKEND"] before importing it (models.py builds and
keeps the model). Exceptions propagate on purpose: the worker that calls train_run records failures.
"""

from __future__ import annotations

import functools
import io
import math
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from hpcjobs import data, history, scores, splits
from hpcjobs.layout import SweepDir, read_config, read_json, write_bytes, write_json
from hpcjobs.models import MODELS, build_model, one_hot, probe_device, seed_everything, versions
from hpcjobs.plan import (
    Timing,
    build_result,
    choose_policy,
    diverged,
    now,
    plan_execution,
    summarize_history,
)
from hpcjobs.settings import Execution, TrainSettings
from hpcjobs.vocab import Objective


def train_run(sweep: SweepDir, run_id: str, since: float | None = None) -> dict[str, Any]:
    """Train the run described by its config.json; write and return its result.json.

    `since` (a time.perf_counter() value) is when the run's start-up began, the process start for a process's
    first run; by default, now.
    """
    clock = time.perf_counter() if since is None else since
    config = read_config(sweep, run_id)
    started = now()
    backend = keras.backend.backend()
    if config.backend != backend:
        raise RuntimeError(
            f"Expected the Keras backend of the config, {config.backend!r}. Received: {backend!r} "
            "(KERAS_BACKEND must be set before keras is first imported)"
        )
    data_cfg, model_cfg, train_cfg = config.settings.data, config.settings.model, config.settings.train
    device, capability = probe_device(backend)
    policy = choose_policy(train_cfg.precision, capability)
    print(f"{run_id}: training on {device} ({policy})", flush=True)
    key = (config.settings.program_key(), policy)
    reuse = MODELS.holds(key)
    if not reuse:
        # A new program: start from a clean slate (and let the previous program's graphs go).
        MODELS.drop()
        keras.backend.clear_session()
    seed_everything(config.seed, backend)

    ready = dataset(
        data_cfg.source, data_cfg.test_fraction, data_cfg.validation_fraction, config.seed, data_cfg.scale
    )
    objective = Objective.for_metrics(train_cfg.metrics)
    n_train = len(ready.rows(TRAIN))
    execution = plan_execution(train_cfg, backend, n_train)

    history_path, backup_dir = sweep.history(run_id), sweep.backup_dir(run_id)
    # Training continues at the backup's epoch, at 0 without one: rows an earlier attempt wrote from there on
    # would otherwise be there twice, or outlive it (a rerun that stops earlier than the first one did).
    history.cut(history_path, EpochBackup.resumes_at(backup_dir))

    keras.mixed_precision.set_dtype_policy(policy)
    try:
        # Built even when the compiled model is reused: its initial weights are the run's, drawn exactly as a
        # fresh run draws them.
        fresh = build_model(
            ready.n_features,
            ready.n_classes,
            hidden=list(model_cfg.hidden),
            activation=model_cfg.activation,
            dropout=model_cfg.dropout,
            l2=model_cfg.l2,
        )
        model = MODELS.model(key, fresh, ready.sample(), train_cfg, execution)
        divergence, epochs, callbacks = training_callbacks(
            run_id,
            train_cfg,
            objective,
            history_path,
            backup_dir,
            keep_backup=config.keep_backup,
        )

        fit_model(model, ready, train_cfg, execution, callbacks, seed=config.seed)
        test = scores_on_test(model, ready, execution.eval_batch_size)
        params = model.count_params()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")

    result = build_result(
        config,
        summarize_history(pd.read_csv(history_path), objective),
        diverged_epoch=divergence.diverged_epoch,
        test=test,
        params=params,
        timing=Timing.of(clock, epochs.ends, reused=reuse, until=time.perf_counter()),
        n_train=n_train,
        precision_policy=policy,
        execution=execution,
        backend=backend,
        device=device,
        versions=versions(backend),
        started=started,
        finished=now(),
    )
    write_json(sweep.result(run_id), result)
    return result


TRAIN, VALIDATION, TEST = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Source:
    """A data source as loaded, with its number of classes."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int

    @functools.cached_property
    def tensors(self) -> tuple[Any, Any]:
        """The features and one-hot labels in TensorFlow variables, made once for every run of the source.
        Variables, not constants: tf.data copies the constants a pipeline holds into the graph it rewrites
        each time it makes an iterator (1-5 s for MNIST's 188 MB, seen with py-spy in Grappler)."""
        import tensorflow as tf

        return (
            tf.Variable(self.x, trainable=False),
            tf.Variable(one_hot(self.y, self.n_classes), trainable=False),
        )


@dataclass(frozen=True, eq=False)
class Dataset:
    """A run's source and partition: what runs of one source, split and seed share."""

    source: Source
    partition: splits.Partition
    _features: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @property
    def n_classes(self) -> int:
        return self.source.n_classes

    @property
    def n_features(self) -> int:
        return int(self.source.x.shape[1])

    def rows(self, part: int) -> np.ndarray:
        return (self.partition.train, self.partition.val, self.partition.test)[part]

    def labels(self, part: int) -> np.ndarray:
        """The part's integer labels."""
        labels: np.ndarray = self.source.y[self.rows(part)]
        return labels

    def arrays(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        """The part's standardized features and one-hot labels: the features copied once per dataset and
        part, and only for the parts asked for (a TensorFlow run asks for its test part alone)."""
        x = self._features.get(part)
        if x is None:
            x = self._features[part] = self.partition.standardized(self.source.x, self.rows(part))
        return x, one_hot(self.labels(part), self.n_classes)

    def batches(self, part: int, batch_size: int, seed: int | None = None) -> Any:
        """The part's batches as Keras' array adapter makes them (the last one short), from a tf.data
        pipeline that gathers and standardizes the part's rows from the source's tensors: no copy of the part
        per run, and no step of tf.data per row. Seeded (training): each iteration (Keras makes one an epoch)
        a new permutation of the rows, drawn from the run's seed in one op, where a shuffle buffer handled
        the rows one by one (~0.3 s an epoch for 48,000 rows)."""
        import tensorflow as tf

        features, labels = self.source.tensors
        mean, std = tf.constant(self.partition.mean), tf.constant(self.partition.std)
        rows = tf.constant(self.rows(part))

        def batched(order: Any) -> Any:
            # One function per pipeline that tf.data traces: each costs ~20 ms a run.
            def batch(start: Any) -> Any:
                i = order[start : start + batch_size]
                return (tf.gather(features, i) - mean) / std, tf.gather(labels, i)

            return tf.data.Dataset.range(0, len(self.rows(part)), batch_size).map(batch)

        if seed is None:
            batches = batched(rows)
        else:
            key = tf.constant(seed, tf.int64)
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
            batches = draws.flat_map(
                lambda draw: batched(tf.random.experimental.stateless_shuffle(rows, tf.stack([key, draw])))
            ).apply(tf.data.experimental.assert_cardinality(math.ceil(len(self.rows(part)) / batch_size)))
        # Two batches ahead and no autotuning: deleting an iterator waited for tf.data's autotuning thread,
        # 0.7-4 s at the end of one fit in three (py-spy: ~RootDataset::Iterator).
        options = tf.data.Options()
        options.autotune.enabled = False
        return batches.prefetch(2).with_options(options)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One standardized training row and its one-hot label: what Keras builds a model's state from."""
        row = self.rows(TRAIN)[:1]
        return self.partition.standardized(self.source.x, row), one_hot(self.source.y[row], self.n_classes)


@functools.lru_cache(maxsize=1)
def source(name: str) -> Source:
    x, y = data.load(name)
    return Source(x, y, data.check_labels(y, name))


@functools.lru_cache(maxsize=1)
def dataset(name: str, test_fraction: float, validation_fraction: float, seed: int, scale: str) -> Dataset:
    """Read once per process and source, partitioned once per split and seed (the last of each is kept)."""
    loaded = source(name)
    return Dataset(
        loaded, splits.partition(loaded.x, loaded.y, test_fraction, validation_fraction, seed, scale)
    )


def training_callbacks(
    run_id: str,
    train_cfg: TrainSettings,
    objective: Objective,
    history_path: Path,
    backup_dir: Path,
    keep_backup: bool = False,
) -> tuple[DivergenceStop, EpochLine, list[keras.callbacks.Callback]]:
    """The run's callbacks, all of them epoch-level: a batch hook would make Keras call the callbacks
    synchronously after every execution (keras/src/callbacks/callback_list.py, _configure_async_dispatch)."""
    divergence = DivergenceStop()
    # CSVLogger before the backup: a kill between the two leaves a row that the resume cuts (train_run)
    # and writes again, instead of losing one.
    callbacks: list[keras.callbacks.Callback] = [
        divergence,
        keras.callbacks.CSVLogger(str(history_path), append=True),
        # A halving search keeps it: a promoted run continues from it to its next rung's epochs.
        EpochBackup(str(backup_dir), delete_checkpoint=not keep_backup),
    ]
    patience = train_cfg.early_stopping_patience
    if patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                objective.name, mode=objective.direction, patience=patience, restore_best_weights=True
            )
        )
    line = EpochLine(run_id, train_cfg.epochs, objective.name)
    callbacks.append(line)
    return divergence, line, callbacks


def fit_model(
    model: keras.Model,
    ready: Dataset,
    train_cfg: TrainSettings,
    execution: Execution,
    callbacks: list[keras.callbacks.Callback],
    seed: int,
) -> keras.callbacks.History:
    batch_size, epochs, eval_size = train_cfg.batch_size, train_cfg.epochs, execution.eval_batch_size
    if keras.backend.backend() != "tensorflow":
        return model.fit(
            *ready.arrays(TRAIN),
            validation_data=ready.arrays(VALIDATION),
            epochs=epochs,
            batch_size=batch_size,
            validation_batch_size=eval_size,
            callbacks=callbacks,
            verbose=0,
        )
    # Given the epoch's steps, Keras makes the next epoch's iterator as one ends, and not again as it starts;
    # it runs each execution's steps until the data end, so an epoch is one pass whatever the execution.
    return model.fit(
        ready.batches(TRAIN, batch_size, seed),
        steps_per_epoch=math.ceil(len(ready.rows(TRAIN)) / batch_size),
        validation_data=ready.batches(VALIDATION, eval_size),
        validation_steps=math.ceil(len(ready.rows(VALIDATION)) / eval_size),
        epochs=epochs,
        shuffle=False,  # the batches are shuffled from the run's seed
        callbacks=callbacks,
        verbose=0,
    )


def scores_on_test(model: keras.Model, ready: Dataset, batch_size: int) -> dict[str, float]:
    """The test part's loss and metrics as Keras' evaluate computes them, and macro precision, recall and F1:
    from one prediction of the part, where an evaluate and a predict each made their own pass and iterator
    (0.25 s of a reused TensorFlow run's ~1 s start-up)."""
    x, y = ready.arrays(TEST)
    probabilities = np.concatenate(
        [model.predict_on_batch(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    )
    model.reset_metrics()
    metrics = model.compute_metrics(x, y, probabilities, sample_weight=None)
    loss = model.compute_loss(x, y, probabilities, training=False)
    evaluated = {name: float(value) for name, value in {**metrics, "loss": loss}.items()}
    predicted = probabilities.argmax(axis=1)
    return {**evaluated, **scores.macro_scores(ready.labels(TEST), predicted, ready.n_classes)}


class DivergenceStop(keras.callbacks.Callback):  # type: ignore[misc]  # keras is untyped
    """Stops at the first epoch whose training loss says the run diverged (plan.diverged: NaN/inf, or past
    a bound that a saturated JAX run also crosses) and records that (1-based) epoch.

    keras.callbacks.TerminateOnNaN stops too, but fit() then returns normally and the run would look
    COMPLETED. The epoch's loss is the mean over its batches, so one non-finite batch shows at the epoch's
    end. Checking each batch would stop sooner, by the rest of one epoch at most, but would make Keras call
    the callbacks synchronously after every execution (see training_callbacks).
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged_epoch: int | None = None
        self.previous = math.nan

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or self.diverged_epoch is not None:
            return
        if diverged(float(loss), self.previous, int(self.model.output_shape[-1])):
            self.diverged_epoch = epoch + 1
            self.model.stop_training = True
        self.previous = float(loss)


# The backup's reader of each model: one made per run would be traced again for each run that reuses the
# compiled model (and TensorFlow warns in the job log from the sixth).
_READERS: weakref.WeakKeyDictionary[keras.Model, Any] = weakref.WeakKeyDictionary()


class EpochBackup(keras.callbacks.BackupAndRestore):  # type: ignore[misc]
    """BackupAndRestore that writes its files atomically, as one NumPy archive, and has no batch hook.

    Keras writes the backup in place: a task killed mid-write (kill -9, node failure) left weights that
    could not be loaded, and the run could never resume (seen on the lab cluster). Its HDF5 writer walks the
    model's objects in Python, ~0.15 s an epoch for a small MLP; the values of the model's and the
    optimizer's variables, in their order, are all a resume of the same config needs. The batch hook is a
    no-op with save_freq="epoch", but merely overriding it makes Keras call every callback synchronously.
    """

    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def state(self) -> list[Any]:
        return [*self.model.variables, *self.model.optimizer.variables]

    def values(self) -> list[np.ndarray]:
        if keras.backend.backend() != "tensorflow":
            return [keras.ops.convert_to_numpy(v) for v in self.state()]
        read = _READERS.get(self.model)
        if read is None:
            import tensorflow as tf

            # One call reads them all: read one by one, the ~50 variables of a small MLP took 10 ms.
            state = self.state()
            read = _READERS[self.model] = tf.function(lambda: [v.value for v in state])
        return [value.numpy() for value in read()]

    @staticmethod
    def resumes_at(backup_dir: Path) -> int:
        """The epoch a fit with this backup starts at: Keras' metadata says it, 0 without it."""
        metadata = backup_dir / "training_metadata.json"  # BackupAndRestore's name
        return int(read_json(metadata)["epoch"]) if metadata.is_file() else 0

    def archive(self) -> str:
        return os.path.join(self.backup_dir, "latest.npz")

    def _save_model(self) -> None:
        # Variables first, then the epoch: a kill between the two redoes one epoch, it never loses one.
        archive = io.BytesIO()
        np.savez(archive, *self.values())
        write_bytes(Path(self.archive()), archive.getvalue())
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        write_json(Path(self._training_metadata_path), metadata)

    def _load_model(self) -> None:
        if not os.path.exists(self.archive()):
            # A backup an earlier hpcjobs wrote in Keras' format (or none: Keras then starts at epoch 0).
            super()._load_model()
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with np.load(self.archive()) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        for variable, value in zip(self.state(), values, strict=True):
            variable.assign(value)
        self.model._initial_epoch = self.resumes_at(Path(self.backup_dir))


class EpochLine(keras.callbacks.Callback):  # type: ignore[misc]
    """One short line per epoch on stdout (the job log), instead of Keras' per-batch progress bar; keeps the
    time.perf_counter() at each epoch's end for the result's start-up and training seconds."""

    def __init__(self, run_id: str, epochs: int, monitor: str) -> None:
        super().__init__()
        self.run_id, self.epochs, self.monitor = run_id, epochs, monitor
        self.clock = time.perf_counter()
        self.ends: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.clock = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.ends.append(time.perf_counter())
        seconds = self.ends[-1] - self.clock
        print(
            f"{self.run_id} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', math.nan):.4g}, "
            f"{self.monitor} {logs.get(self.monitor, math.nan):.4g} ({seconds:.1f} s)",
            flush=True,
        )
