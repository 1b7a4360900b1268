"""A source's split into a run's parts: its seeded train/validation/test rows, and the train rows' mean and
std that the parts are standardized by, summed over the train rows themselves. Loading and validating the
source: data.py.

Imports numpy and the ground floor only, so it is as light to import as data.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vocab import DataError


@dataclass(frozen=True, eq=False)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True, eq=False)
class Partition:
    """A run's train/validation/test rows of its source and the train rows' mean and std: its split, with
    no data copied yet."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def take(self, x: np.ndarray, y: np.ndarray) -> Split:
        """The parts, copied and standardized."""
        parts = [self.standardized(x, rows) for rows in (self.train, self.val, self.test)]
        return Split(parts[0], y[self.train], parts[1], y[self.val], parts[2], y[self.test])

    def standardized(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """x's rows, copied and standardized."""
        # Scaled in place, in float32: the rows are a copy already (~5× faster than scaling all of x in
        # float64 for 60,000 × 784, a cost each new seed pays).
        part = np.asarray(x[rows], dtype=np.float32)
        part -= self.mean
        part /= self.std
        return part


def partition(
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    scale: str = "standard",
) -> Partition:
    """Seeded random train/validation/test rows; features to be standardized with the TRAIN mean and std
    (`scale` "standard") or left as they are ("none")."""
    if len(y) != len(x):
        raise DataError(f"Expected as many labels as samples. Received: {len(x)} samples, {len(y)} labels")
    train, val, test = split_indices(len(x), test_fraction, validation_fraction, seed)
    return Partition(train, val, test, *scaling(x, train, scale))


def split(
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    scale: str = "standard",
) -> Split:
    """The parts of `partition`, copied and standardized."""
    return partition(x, y, test_fraction, validation_fraction, seed, scale).take(x, y)


def split_indices(
    n: int, test_fraction: float, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of `split`'s train, validation and test parts, without copying any data."""
    if not (
        0 <= test_fraction < 1 and 0 <= validation_fraction < 1 and test_fraction + validation_fraction < 1
    ):
        raise DataError(
            "Expected test_fraction and validation_fraction in [0, 1) with a sum below 1. "
            f"Received: test_fraction={test_fraction}, validation_fraction={validation_fraction}"
        )
    n_test = round(n * test_fraction)
    n_val = round(n * validation_fraction)
    n_train = n - n_test - n_val
    if min(n_train, n_val, n_test) < 1:
        raise DataError(
            "Expected at least one sample in each of train, validation and test. "
            f"Received: {n} samples split {n_train}/{n_val}/{n_test} "
            f"(test_fraction={test_fraction}, validation_fraction={validation_fraction})"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def scaling(x: np.ndarray, train_rows: np.ndarray, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """The train rows' per-feature float32 (mean, std) that `split` scales by for "standard", 0 and 1 for
    "none". Features constant over the train rows (MNIST's border pixels) get std 1, as scikit-learn's
    StandardScaler gives them, whatever they hold in the other parts."""
    n_features = x.shape[1]
    if scale != "standard":
        return np.zeros(n_features, np.float32), np.ones(n_features, np.float32)
    train = moments(x, train_rows)
    variance = train.squares / train.n
    std = np.where(constant(train.n, train.mean, variance), 1.0, np.sqrt(variance))
    return train.mean.astype(np.float32), std.astype(np.float32)


def constant(n: int, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Features whose variance is within the rounding error of the two-pass sums (scikit-learn's
    `_is_constant_feature`): a constant 0.1 averages to 0.1 ± an ulp, leaving a variance of ~1e-34, and
    a validation value of 1 scaled by its root would be ~1e16. The bound is relative to the feature's own
    scale, so a tiny feature that truly varies (values ~1e-30) keeps its std."""
    eps = np.finfo(np.float64).eps
    bound = n * eps * variance + (n * mean * eps) ** 2
    result: np.ndarray = variance <= bound
    return result


@dataclass(frozen=True)
class Moments:
    """Some rows' count, and their per-feature mean and sum of squared deviations from it, in float64."""

    n: int
    mean: np.ndarray
    squares: np.ndarray

    def plus(self, other: Moments) -> Moments:
        """The moments of both sets of rows: Chan et al.'s pairwise update. Only sums of non-negative terms,
        so nothing cancels (the moments of some rows less others' did: a pixel constant in the train rows
        kept a std of ~1e-8 and its validation values became ~1e9)."""
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        squares = self.squares + other.squares + delta**2 * (self.n * other.n / n)
        return Moments(n, mean, squares)


def moments(x: np.ndarray, rows: np.ndarray) -> Moments:
    """The moments of x's `rows`, a block of rows at a time in float64: each block gathered once, its own
    mean and squared deviations summed while it is in cache, the blocks merged by `Moments.plus`."""
    total: Moments | None = None
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = x[rows[start : start + _BLOCK_ROWS]].astype(np.float64)
        mean = block.mean(axis=0)
        block -= mean
        part = Moments(len(block), mean, np.einsum("ij,ij->j", block, block))
        total = part if total is None else total.plus(part)
    if total is None:
        raise ValueError("Expected at least one row. Received: none")
    return total


# Rows per block of `moments`: 256 float64 MNIST rows (1.5 MiB) stay in cache.
_BLOCK_ROWS = 256
