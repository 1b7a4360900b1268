"""The Keras model of a run: the MLP built and compiled from its settings, the compiled model a process keeps
for the next run of the same program, and the process's seeds and device.

Compute side only: the caller sets os.environ["KERAS_BACKEND"] before importing it. train.py trains one run
with it, population.py a population.
"""

from __future__ import annotations

import functools
import importlib
import math
import platform
import random
from typing import Any

import keras
import numpy as np

from hpcjobs.settings import Execution, TrainSettings

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "nadam": keras.optimizers.Nadam,
    "adagrad": keras.optimizers.Adagrad,
}


def build_model(
    n_features: int, n_classes: int, hidden: list[int], activation: str, dropout: float, l2: float = 0.0
) -> keras.Sequential:
    """The MLP, under the current global dtype policy, except the softmax output which stays float32:
    a float16 softmax rounds small probabilities to 0 and the cross-entropy to inf. `l2` penalizes the
    hidden kernels (l2 × sum of squares added to the loss). Initialized as Keras' Dense layers are, drawn by
    NumPy (HostGlorotUniform)."""
    layers: list[Any] = [keras.Input((n_features,))]
    penalty = keras.regularizers.L2(l2) if l2 > 0 else None
    init = {"kernel_initializer": HostGlorotUniform(), "bias_initializer": HostZeros()}
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation, kernel_regularizer=penalty, **init))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", dtype="float32", **init))
    return keras.Sequential(layers)


class HostGlorotUniform(keras.initializers.Initializer):  # type: ignore[misc]
    """Keras' default kernel initializer, Glorot uniform, drawn from NumPy's global generator (which
    seed_everything seeds). Keras' own draws on JAX compile a random program per kernel shape: ~0.9 s each
    on this 2-core CPU, 7 s of the 8 layers of the digits example's deepest net."""

    def __call__(self, shape: tuple[int, int], dtype: Any = None) -> Any:
        limit = math.sqrt(6 / sum(shape))
        values = np.random.uniform(-limit, limit, shape).astype(keras.backend.standardize_dtype(dtype))
        return keras.ops.convert_to_tensor(values)


class HostZeros(keras.initializers.Initializer):  # type: ignore[misc]
    """Zeros made by NumPy: on JAX, Keras' Zeros compiles a program per shape too."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        return keras.ops.convert_to_tensor(np.zeros(shape, keras.backend.standardize_dtype(dtype)))


def compile_model(model: keras.Model, train: TrainSettings, execution: Execution) -> None:
    # Given a plain optimizer, compile() wraps it in LossScaleOptimizer itself when the model's
    # policy is mixed_float16 (keras 3 auto_scale_loss=True): wrapping here would be redundant.
    model.compile(
        optimizer=OPTIMIZERS[train.optimizer](learning_rate=train.learning_rate),
        loss="categorical_crossentropy",
        metrics=list(train.metrics),
        steps_per_execution=execution.steps_per_execution,
        jit_compile=execution.jit_compile,
    )


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """float32 once here, rather than Keras casting to_categorical's float64 each time it slices batches."""
    return keras.utils.to_categorical(labels, num_classes=n_classes).astype(np.float32)


class CompiledModels:
    """The process's last built and compiled model and the program key it was compiled for.

    A run of the same key trains that model again instead of building and compiling its own, so nothing is
    traced or compiled again: its variables take the fresh model's values (weights and dropout seeds, drawn
    from the run's seed) and the optimizer's variables their values from before the first step. Only the
    last model is kept: runs of one program come one after another (programs.in_program_order).
    """

    def __init__(self) -> None:
        self.key: tuple[str, str] | None = None
        self.compiled: keras.Model | None = None
        self.optimizer_start: list[np.ndarray] = []

    def holds(self, key: tuple[str, str]) -> bool:
        return self.compiled is not None and self.key == key

    def drop(self) -> None:
        self.key, self.compiled, self.optimizer_start = None, None, []

    def model(
        self,
        key: tuple[str, str],
        fresh: keras.Model,
        batch: tuple[np.ndarray, np.ndarray],
        train: TrainSettings,
        execution: Execution,
    ) -> keras.Model:
        """The model to train: `fresh`, compiled, for a new key; else the compiled one given fresh's state."""
        if self.compiled is None or self.key != key:
            compile_model(fresh, train, execution)
            # Keras builds the loss, metrics and optimizer at the first fit, from a batch it takes from the
            # training data; on JAX that draws one more shuffle from NumPy's global generator, which a reused
            # model would not draw. Built here from a given batch, fresh and reused runs shuffle alike, and
            # the optimizer's start values can be kept.
            fresh._symbolic_build(data_batch=batch)
            self.key, self.compiled = key, fresh
            self.optimizer_start = [keras.ops.convert_to_numpy(v) for v in fresh.optimizer.variables]
            return fresh
        model = self.compiled
        for target, source in zip(model.variables, fresh.variables, strict=True):
            target.assign(source.value)
        for target, start in zip(model.optimizer.variables, self.optimizer_start, strict=True):
            target.assign(start)
        model.optimizer.learning_rate = train.learning_rate
        # The epoch an earlier run resumed at (EpochBackup): fit() would start this run there.
        model._initial_epoch = None
        return model


MODELS = CompiledModels()


@functools.cache
def settle_tensorflow() -> None:
    """Once a process: op determinism (cheap for an MLP; GPU reductions reproducible too), under which
    TensorFlow refuses random ops with no seed at all (e.g. a shuffle), so a constant global seed."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(0)


def seed_everything(seed: int, backend: str) -> None:
    """Same config + seed on CPU gives the same history: Python's, NumPy's and Keras' generators (and
    torch's). What keras.utils.set_random_seed does but seed TensorFlow with the run's seed: that imports
    TensorFlow wherever it is installed (~9 s of a JAX process here), and setting TensorFlow's global seed
    clears its kernel cache (eager/context.py, _set_global_seed), so a reused model's functions were made
    again in the next fit (~0.6 s). TensorFlow runs' random ops take their own seeds: Keras' from its
    generator, the batches' order from the run's seed."""
    if backend == "tensorflow":
        settle_tensorflow()
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


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


def versions(backend: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    if backend in ("tensorflow", "jax"):
        found[backend] = importlib.import_module(backend).__version__
    return found
