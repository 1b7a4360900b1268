"""A run's data as Keras takes it: its source read once per process, its rows and scaling, and its parts
as NumPy arrays or, on TensorFlow, as tf.data batches gathered and standardized from the source itself.

Compute side only, like train.py: the caller sets KERAS_BACKEND before importing it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcjobs import data
from hpcjobs.models import one_hot

TRAIN, VALIDATION, TEST = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Source:
    """A data source as loaded, with its number of classes."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int

    @functools.cached_property
    def tensors(self) -> tuple[Any, Any]:
        """The features and one-hot labels as TensorFlow constants, made once for every run of the source."""
        import tensorflow as tf

        return tf.constant(self.x), tf.constant(one_hot(self.y, self.n_classes))


@functools.lru_cache(maxsize=1)
def source(name: str) -> Source:
    x, y = data.load(name)
    return Source(x, y, data.check_labels(y, name))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A run's source and partition: what runs of one source, split and seed share."""

    source: Source
    partition: data.Partition

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

    @functools.cached_property
    def split(self) -> data.Split:
        return self.partition.take(self.source.x, self.source.y)

    def arrays(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        """The part's standardized features and one-hot labels (the features copied once per dataset)."""
        split = self.split
        x = (split.x_train, split.x_val, split.x_test)[part]
        return x, one_hot(self.labels(part), self.n_classes)

    def batches(self, part: int, batch_size: int, seed: int | None = None) -> Any:
        """The part's batches as Keras' array adapter makes them (reshuffled each epoch when seeded, the last
        one short), from a smaller tf.data pipeline that gathers and standardizes the part's rows from the
        source's tensors: no copy of the part per run, and a run makes two iterators per epoch, each ~3×
        cheaper than Keras' (bench/RESULTS.md, compile once)."""
        import tensorflow as tf

        features, labels = self.source.tensors
        mean, std = tf.constant(self.partition.mean), tf.constant(self.partition.std)
        order = tf.data.Dataset.from_tensor_slices(self.rows(part))
        if seed is not None:
            order = order.shuffle(len(self.rows(part)), seed=seed, reshuffle_each_iteration=True)
        return (
            order.batch(batch_size)
            .map(lambda i: ((tf.gather(features, i) - mean) / std, tf.gather(labels, i)))
            .prefetch(tf.data.AUTOTUNE)
        )

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One standardized training row and its one-hot label: what Keras builds a model's state from."""
        row = self.rows(TRAIN)[:1]
        x = (self.source.x[row] - self.partition.mean) / self.partition.std
        return x.astype(np.float32), one_hot(self.source.y[row], self.n_classes)


@functools.lru_cache(maxsize=1)
def dataset(name: str, test_fraction: float, validation_fraction: float, seed: int, scale: str) -> Dataset:
    """Read once per process and source, partitioned once per split and seed (the last of each is kept)."""
    loaded = source(name)
    return Dataset(
        loaded, data.partition(loaded.x, loaded.y, test_fraction, validation_fraction, seed, scale)
    )
