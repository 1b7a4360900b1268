from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from hpcjobs.layout import SweepDir, read_json, write_json
from hpcjobs.settings import TrainSettings
from hpcjobs.vocab import Objective

pytestmark = pytest.mark.keras

METRICS = ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"]


@pytest.fixture(autouse=True)
def train(monkeypatch):
    """hpcjobs.train, imported only once KERAS_BACKEND is set (Keras reads it at import time)."""
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    return importlib.import_module("hpcjobs.train")


@pytest.fixture
def models(train):
    """hpcjobs.models, imported like train once KERAS_BACKEND is set."""
    return importlib.import_module("hpcjobs.models")


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    path = tmp_path / "toy.npz"
    np.savez(path, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int))
    return str(path)


def make_run(root, source, run_id="hidden-8x4__seed-0", **train_overrides):
    sweep = SweepDir(root)
    train_cfg = {
        "epochs": 2,
        "batch_size": 16,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "metrics": METRICS,
        "precision": "auto",
        "early_stopping_patience": 0,
        **train_overrides,
    }
    config = {
        "run_id": run_id,
        "sweep": "toy",
        "backend": "tensorflow",
        "seed": 0,
        "data": {"source": source, "test_fraction": 0.2, "validation_fraction": 0.1},
        "model": {"hidden": [8, 4], "activation": "relu", "dropout": 0.0},
        "train": train_cfg,
    }
    write_json(sweep.config(run_id), config)
    return sweep, run_id


# --- with Keras -------------------------------------------------------------------------------


def test_no_callback_of_a_run_has_a_batch_hook(train, tmp_path):
    """Keras dispatches batch callbacks to a thread (JAX) instead of waiting for each execution's results
    only while no callback overrides a batch hook (keras/src/callbacks/callback_list.py)."""
    from keras.src.utils.python_utils import is_default

    _, _, callbacks = train.training_callbacks(
        "r",
        TrainSettings(epochs=2, early_stopping_patience=1),
        Objective("val_loss", "min"),
        tmp_path / "h.csv",
        tmp_path / "b",
    )
    assert len(callbacks) == 5
    hooks = ("on_batch_end", "on_train_batch_end", "on_test_batch_end", "on_predict_batch_end")
    assert [
        (type(cb).__name__, hook) for cb in callbacks for hook in hooks if not is_default(getattr(cb, hook))
    ] == []


def test_probe_device_on_cpu(models):
    assert models.probe_device("tensorflow") == ("cpu", None)


def test_softmax_stays_float32_under_mixed_bfloat16(models):
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build_model(5, 3, hidden=[8, 4], activation="gelu", dropout=0.5)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.compute_dtype for layer in dense] == ["bfloat16", "bfloat16", "float32"]
    assert dense[-1].dtype_policy.name == "float32"
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    assert model.count_params() == (5 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3)


def test_mixed_float16_loss_scaling_is_wrapped_exactly_once(models):
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = models.build_model(2, 2, hidden=[4], activation="relu", dropout=0.0)
        optimizer = models.OPTIMIZERS["adam"](learning_rate=0.01)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(model.optimizer.inner_optimizer, keras.optimizers.LossScaleOptimizer)


# --- real (tiny) trainings ----------------------------------------------------------------------


def test_train_run_completes(train, tmp_path, source, capsys):
    sweep, run_id = make_run(tmp_path / "sweep", source)
    result = train.train_run(sweep, run_id)

    history = pd.read_csv(sweep.history(run_id))
    assert list(history["epoch"]) == [0, 1]
    for name in ["loss", "val_loss", *METRICS, *(f"val_{m}" for m in METRICS)]:
        assert name in history.columns
    assert read_json(sweep.result(run_id)) == read_json_roundtrip(result)
    assert result["status"] == "COMPLETED" and result["diverged_epoch"] is None
    assert (result["epochs"], result["epochs_done"]) == (2, 2)
    assert result["params"] == (2 * 8 + 8) + (8 * 4 + 4) + (4 * 2 + 2)
    assert result["precision_policy"] == "float32" and result["device"] == "cpu"
    assert result["monitor"] == "val_categorical_accuracy" and result["best_epoch"] in (1, 2)
    assert set(result["best"]) == {"val_loss", *(f"val_{m}" for m in METRICS)}
    assert 0.0 <= result["test"]["f1_macro"] <= 1.0
    assert {"loss", "categorical_accuracy", "precision_macro", "recall_macro"} <= set(result["test"])
    assert result["samples_per_second"] > 0 and set(result["versions"]) >= {"python", "keras", "tensorflow"}
    assert not sweep.backup_dir(run_id).exists()
    assert capsys.readouterr().out.count(f"{run_id} epoch ") == 2
    # 44 training samples at batch 16: one execution of all 3 steps per epoch, one history row per epoch.
    assert result["execution"] == {"steps_per_execution": 3, "jit_compile": False, "eval_batch_size": 4096}


def read_json_roundtrip(result):
    import json

    return json.loads(json.dumps(result, default=str))


def test_same_seed_same_history(train, tmp_path, source):
    histories = []
    for name in ("a", "b"):
        sweep, run_id = make_run(tmp_path / name, source)
        train.train_run(sweep, run_id)
        histories.append(pd.read_csv(sweep.history(run_id)))
    pd.testing.assert_frame_equal(histories[0], histories[1])


def test_uneven_executions_log_one_row_per_epoch(train, tmp_path, source):
    # 3 steps per epoch in executions of 2: a full one and a short one, and one row per epoch all the same.
    sweep, run_id = make_run(tmp_path / "sweep", source, epochs=4, steps_per_execution=2)
    result = train.train_run(sweep, run_id)
    assert list(pd.read_csv(sweep.history(run_id))["epoch"]) == [0, 1, 2, 3]
    assert result["epochs_done"] == 4 and result["execution"]["steps_per_execution"] == 2


def test_steps_per_execution_does_not_change_the_history(train, tmp_path, source):
    histories = []
    for name, steps in (("one", 1), ("all", "auto")):
        sweep, run_id = make_run(tmp_path / name, source, steps_per_execution=steps)
        train.train_run(sweep, run_id)
        histories.append(pd.read_csv(sweep.history(run_id)))
    pd.testing.assert_frame_equal(histories[0], histories[1])


def test_huge_learning_rate_diverges(train, tmp_path, source):
    # Plain SGD at 1e10 overflows the weights within the first epoch (adam/rmsprop normalise the step).
    sweep, run_id = make_run(tmp_path / "sweep", source, epochs=3, optimizer="sgd", learning_rate=1e10)
    result = train.train_run(sweep, run_id)
    assert result["status"] == "DIVERGED" and result["diverged_epoch"] == 1
    assert result["epochs_done"] == 1 and result["final_loss"] is None
    assert not sweep.backup_dir(run_id).exists()


def test_mixed_bfloat16_trains_and_policy_is_reset(train, tmp_path, source):
    import keras

    sweep, run_id = make_run(tmp_path / "sweep", source, epochs=1, precision="mixed_bfloat16")
    result = train.train_run(sweep, run_id)
    assert result["precision_policy"] == "mixed_bfloat16" and result["status"] == "COMPLETED"
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_early_stopping_run(train, tmp_path, source):
    sweep, run_id = make_run(tmp_path / "sweep", source, early_stopping_patience=1)
    result = train.train_run(sweep, run_id)
    assert result["status"] == "COMPLETED" and 1 <= result["epochs_done"] <= 2


class Preempted(Exception):
    """Stands in for Slurm killing the job."""


def test_requeued_run_resumes_from_its_last_finished_epoch(train, tmp_path, source, monkeypatch):
    import keras

    original = train.EpochLine.on_epoch_end
    loggers = []

    class RecordedCSVLogger(keras.callbacks.CSVLogger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            loggers.append(self)

    def killed_after_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise Preempted

    sweep, run_id = make_run(tmp_path / "sweep", source, epochs=3)
    monkeypatch.setattr(train.EpochLine, "on_epoch_end", killed_after_second_epoch)
    monkeypatch.setattr(keras.callbacks, "CSVLogger", RecordedCSVLogger)
    with pytest.raises(Preempted):
        train.train_run(sweep, run_id)
    loggers[0].csv_file.close()  # a real kill closes it with the process
    assert sweep.backup_dir(run_id).is_dir() and not sweep.result(run_id).exists()
    monkeypatch.setattr(train.EpochLine, "on_epoch_end", original)

    result = train.train_run(sweep, run_id)
    assert list(pd.read_csv(sweep.history(run_id))["epoch"]) == [0, 1, 2]
    assert result["epochs_done"] == 3 and result["status"] == "COMPLETED"
    assert not sweep.backup_dir(run_id).exists()


def test_a_run_that_failed_writing_its_backup_resumes_with_each_epoch_once(
    train, tmp_path, source, monkeypatch
):
    """The second epoch's row is written, then its backup fails (a full disk): the resume trains that epoch
    again from the first epoch's backup, and its row is there once, the resumed one."""
    import keras

    save, loggers = train.EpochBackup._save_model, []

    class RecordedCSVLogger(keras.callbacks.CSVLogger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            loggers.append(self)

    def full_disk_at_second_epoch(self):
        if self._current_epoch == 2:
            raise OSError(28, "No space left on device", self.archive())
        save(self)

    sweep, run_id = make_run(tmp_path / "sweep", source, epochs=3)
    monkeypatch.setattr(train.EpochBackup, "_save_model", full_disk_at_second_epoch)
    monkeypatch.setattr(keras.callbacks, "CSVLogger", RecordedCSVLogger)
    with pytest.raises(OSError):
        train.train_run(sweep, run_id)
    loggers[0].csv_file.close()
    assert list(pd.read_csv(sweep.history(run_id))["epoch"]) == [0, 1]
    monkeypatch.setattr(train.EpochBackup, "_save_model", save)

    result = train.train_run(sweep, run_id)
    assert list(pd.read_csv(sweep.history(run_id))["epoch"]) == [0, 1, 2]
    assert result["epochs_done"] == 3 and result["status"] == "COMPLETED"


def backed_up_model(train, models, tmp_path, backup):
    """A compiled toy model whose variables (optimizer's included) `backup` saved after epoch 2."""
    import keras

    model = models.build_model(2, 2, hidden=[4], activation="relu", dropout=0.0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(np.ones((8, 2)), np.eye(2)[[0, 1] * 4], epochs=1, verbose=0)
    backup.set_model(model)
    backup._current_epoch = 2
    backup._save_model()
    fresh = models.build_model(2, 2, hidden=[4], activation="relu", dropout=0.0)
    fresh.compile(optimizer="adam", loss="categorical_crossentropy")
    restore = train.EpochBackup(str(tmp_path / "backup"))
    restore.set_model(fresh)
    restore.on_train_begin()
    for saved, restored in zip(
        [*model.variables, *model.optimizer.variables],
        [*fresh.variables, *fresh.optimizer.variables],
        strict=True,
    ):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    return fresh


def test_a_backup_restores_every_variable_and_the_epoch(train, models, tmp_path):
    restored = backed_up_model(train, models, tmp_path, train.EpochBackup(str(tmp_path / "backup")))
    assert restored._initial_epoch == 2
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["latest.npz", "training_metadata.json"]


def test_a_backup_in_keras_format_from_an_earlier_hpcjobs_is_restored(train, models, tmp_path):
    import keras

    restored = backed_up_model(
        train, models, tmp_path, keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    )
    assert restored._initial_epoch == 2


def test_a_run_after_a_resumed_run_of_its_program_trains_from_epoch_0(train, tmp_path, source):
    """A halving rung continues a run from its backup in the process that keeps the compiled model; the
    next run of that program must not start at the epoch the previous one resumed at."""
    sweep, first = make_run(tmp_path / "sweep", source, run_id="a", epochs=1)
    config = read_json(sweep.config(first))
    write_json(sweep.config(first), {**config, "keep_backup": True})
    train.train_run(sweep, first)
    longer = {**config, "keep_backup": True, "train": {**config["train"], "epochs": 3}}
    write_json(sweep.config(first), longer)
    assert train.train_run(sweep, first)["epochs_done"] == 3  # continued from its backup at epoch 1
    _, second = make_run(tmp_path / "sweep", source, run_id="b", epochs=1)
    result = train.train_run(sweep, second)
    assert result["reused_model"] and result["status"] == "COMPLETED"
    assert list(pd.read_csv(sweep.history(second))["epoch"]) == [0]


def test_backend_mismatch_is_refused(train, tmp_path, source):
    sweep, run_id = make_run(tmp_path / "sweep", source)
    config = read_json(sweep.config(run_id))
    write_json(sweep.config(run_id), {**config, "backend": "jax"})
    with pytest.raises(RuntimeError, match="Expected the Keras backend of the config, 'jax'"):
        train.train_run(sweep, run_id)


def test_training_batches_visit_each_row_once_an_epoch_reshuffled_from_the_seed(train):
    from hpcjobs import splits

    x = np.stack([np.arange(30.0), np.arange(30.0) * 2], axis=1).astype(np.float32)
    y = np.arange(30) % 3
    rows = np.arange(5, 25)
    scaling = (np.array([1.0, 2.0], np.float32), np.array([2.0, 4.0], np.float32))
    ready = train.Dataset(train.Source(x, y, 3), splits.Partition(rows, rows[:2], rows[:2], *scaling))

    def epochs(seed, count):
        batches = ready.batches(train.TRAIN, 8, seed=seed)
        return [list(batches) for _ in range(count)]  # an iterator an epoch, as Keras makes them

    first = epochs(seed=1, count=2)
    orders = []
    for epoch in first:
        assert [len(features) for features, _ in epoch] == [8, 8, 4]  # 20 rows, the last batch short
        order = np.concatenate([features.numpy()[:, 0] * 2 + 1 for features, _ in epoch]).astype(int)
        assert sorted(order) == list(rows)
        labels = np.concatenate([one_hot.numpy().argmax(axis=1) for _, one_hot in epoch])
        np.testing.assert_array_equal(labels, y[order])
        np.testing.assert_array_equal(
            np.concatenate([features.numpy() for features, _ in epoch]),
            (x[order] - scaling[0]) / scaling[1],
        )
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    again = epochs(seed=1, count=1)[0]
    np.testing.assert_array_equal(np.concatenate([f.numpy() for f, _ in again])[:, 0] * 2 + 1, orders[0])
    other = epochs(seed=2, count=1)[0]
    assert not np.array_equal(np.concatenate([f.numpy() for f, _ in other])[:, 0] * 2 + 1, orders[0])


def test_evaluation_batches_keep_the_rows_in_order(train):
    from hpcjobs import splits

    x = np.arange(20.0, dtype=np.float32).reshape(10, 2)
    rows = np.array([7, 2, 9, 4, 0])
    unscaled = (np.zeros(2, np.float32), np.ones(2, np.float32))
    source = train.Source(x, np.arange(10) % 2, 2)
    ready = train.Dataset(source, splits.Partition(rows, rows, rows, *unscaled))
    features = np.concatenate([f.numpy() for f, _ in ready.batches(train.TEST, 2)])
    np.testing.assert_array_equal(features, x[rows])


def test_an_epoch_is_one_pass_when_executions_do_not_divide_it(train, models):
    from hpcjobs import splits
    from hpcjobs.settings import Execution

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)).astype(np.float32), np.arange(30) % 2
    rows = np.arange(30)
    unscaled = (np.zeros(2, np.float32), np.ones(2, np.float32))
    ready = train.Dataset(train.Source(x, y, 2), splits.Partition(rows[:20], rows[20:], rows[20:], *unscaled))
    model = models.build_model(2, 2, hidden=[4], activation="relu", dropout=0.0)
    cfg = TrainSettings(epochs=3, batch_size=4, metrics=tuple(METRICS))
    execution = Execution(steps_per_execution=2, jit_compile=False, eval_batch_size=8)  # 5 steps an epoch
    models.compile_model(model, cfg, execution)
    train.fit_model(model, ready, cfg, execution, [], seed=0)
    assert int(model.optimizer.iterations.numpy()) == 3 * 5


def test_test_scores_are_those_of_keras_evaluate(train, models):
    """One prediction of the test rows gives evaluate's loss (the L2 penalty included) and metrics."""
    from hpcjobs import splits
    from hpcjobs.settings import Execution

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)).astype(np.float32), np.arange(64) % 3
    ready = train.Dataset(train.Source(x, y, 3), splits.partition(x, y, 0.4, 0.1, seed=0))
    model = models.build_model(3, 3, hidden=[8], activation="relu", dropout=0.0, l2=0.01)
    models.compile_model(model, TrainSettings(metrics=tuple(METRICS)), Execution(1, False, 8))
    model.fit(*ready.arrays(train.TRAIN), epochs=2, verbose=0, shuffle=False)
    evaluated = model.evaluate(*ready.arrays(train.TEST), batch_size=8, verbose=0, return_dict=True)
    scores = train.scores_on_test(model, ready, batch_size=8)
    assert model.losses and set(evaluated) == {"loss", *METRICS}
    for name, value in evaluated.items():
        assert scores[name] == pytest.approx(value, rel=1e-6), name
    assert {"precision_macro", "recall_macro", "f1_macro"} <= set(scores)


def test_seeding_runs_sets_tensorflows_global_seed_once(models, monkeypatch):
    """Setting TensorFlow's global seed clears its kernel cache: a reused model's functions would be made
    again at each run's first epoch."""
    import tensorflow as tf

    real, calls = tf.random.set_seed, []
    monkeypatch.setattr(tf.random, "set_seed", lambda seed: (calls.append(seed), real(seed)))
    models.settle_tensorflow.cache_clear()  # as in a new process
    for seed in (3, 4, 5):
        models.seed_everything(seed, "tensorflow")
    assert calls == [0]
