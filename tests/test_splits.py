"""A source's split into a run's parts: seeded, disjoint, standardized with the train rows' statistics
only, and those statistics the direct computation's (numpy's, scikit-learn's StandardScaler's) on real data
and on columns that make floating point cancel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs import splits
from hpcjobs.vocab import DataError


def _toy(n=50, features=3):
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return x, np.arange(n) % 2


def test_split_sizes_and_disjoint_parts():
    x, y = _toy()
    parts = splits.split(x, y, test_fraction=0.2, validation_fraction=0.1, seed=0)
    assert (len(parts.x_train), len(parts.x_val), len(parts.x_test)) == (35, 5, 10)
    assert [len(a) for a in (parts.y_train, parts.y_val, parts.y_test)] == [35, 5, 10]
    # Feature 0 is 3 * row index before scaling: recover the rows to check the parts are a partition.
    rows = np.concatenate([parts.x_train, parts.x_val, parts.x_test])[:, 0]
    assert len(np.unique(np.round(rows, 4))) == 50


def test_split_is_deterministic_and_seeded():
    x, y = _toy()
    first = splits.split(x, y, 0.2, 0.1, seed=3)
    again = splits.split(x, y, 0.2, 0.1, seed=3)
    other = splits.split(x, y, 0.2, 0.1, seed=4)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    assert not np.array_equal(first.x_test, other.x_test)


def test_split_standardizes_with_train_statistics_only():
    x, y = _toy()
    x[:, 2] = 7.0  # a constant feature must not divide by zero
    parts = splits.split(x, y, 0.2, 0.1, seed=0)
    assert parts.x_train.dtype == np.float32
    np.testing.assert_allclose(parts.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(parts.x_train.std(axis=0)[:2], 1, atol=1e-5)
    np.testing.assert_array_equal(parts.x_train[:, 2], 0)
    assert np.isfinite(parts.x_test).all()
    assert abs(parts.x_test[:, 0].mean()) > 1e-3  # test rows are scaled with train stats, not their own


def test_scaling_literal():
    x = np.array([[9.0, 9.0], [1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    mean, std = splits.scaling(x, np.array([1, 2]), "standard")
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    assert mean.dtype == std.dtype == np.float32


def _direct(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The train rows' mean and std straight from numpy in float64, constant features (every value the
    same, checked exactly) at std 1."""
    train = x[rows].astype(np.float64)
    constant = (train == train[0]).all(axis=0)
    return train.mean(axis=0), np.where(constant, 1.0, train.std(axis=0))


# Columns that make floating point cancel: constant in the train rows only (0.1 has no exact binary form,
# so its float64 mean is off by an ulp), huge, tiny, a large offset with a small spread, and plain.
ADVERSARIAL = {
    "constant in train only": lambda rng, n: np.full(n, 0.1),
    "constant zero in train only": lambda rng, n: np.zeros(n),
    "huge": lambda rng, n: 1e30 * rng.random(n),
    "tiny": lambda rng, n: 1e-30 * rng.random(n),
    "offset": lambda rng, n: 1000 + rng.random(n),
    "plain": lambda rng, n: rng.normal(size=n),
}


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 3 * splits._BLOCK_ROWS),
    fractions=st.sampled_from([(0.1, 0.1), (0.2, 0.2), (0.45, 0.45), (0.05, 0.5)]),
    seed=st.integers(0, 2**16),
)
def test_scaling_is_the_direct_computation_on_adversarial_columns(n, fractions, seed):
    rng = np.random.default_rng(seed)
    train, val, test = splits.split_indices(n, *fractions, seed=seed)
    others = np.concatenate([val, test])
    x = np.stack([make(rng, n) for make in ADVERSARIAL.values()], axis=1).astype(np.float32)
    x[others, :2] = rng.random((len(others), 2))  # the first two vary in the other parts only
    mean, std = splits.scaling(x, train, "standard")
    direct_mean, direct_std = _direct(x, train)
    np.testing.assert_allclose(mean, direct_mean.astype(np.float32), rtol=1e-6, atol=0)
    np.testing.assert_allclose(std, direct_std.astype(np.float32), rtol=1e-6, atol=0)
    assert std[0] == std[1] == 1.0
    # What a run feeds its model: every part within a few train stds of 0, the other parts' values included.
    scaled = (x - mean) / std
    assert np.isfinite(scaled).all() and np.abs(scaled[:, 2:]).max() < 1e3 and np.abs(scaled[:, :2]).max() < 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaling_of_mnist5k_is_scikit_learns_standard_scaler(seed):
    """mnist5k has ~130 pixels that are 0 in every train row but not in every other row: each gets std 1,
    as StandardScaler gives it (they had a std of ~1e-8, and validation pixels of ~1e9)."""
    from sklearn.preprocessing import StandardScaler

    from hpcjobs import data

    x, y = data.load("mnist5k")
    part = splits.partition(x, y, 0.2, 0.2, seed)
    scaler = StandardScaler().fit(x[part.train].astype(np.float64))
    np.testing.assert_allclose(part.mean, scaler.mean_.astype(np.float32), rtol=1e-6, atol=0)
    np.testing.assert_allclose(part.std, scaler.scale_.astype(np.float32), rtol=1e-6, atol=0)
    constant_in_train = (x[part.train] == 0).all(axis=0) & (x[part.val] != 0).any(axis=0)
    assert constant_in_train.sum() > 0 and (part.std[constant_in_train] == 1).all()
    expected = scaler.transform(x[part.val].astype(np.float64))
    np.testing.assert_allclose(part.take(x, y).x_val, expected, rtol=1e-5, atol=1e-5)


def test_moments_merge_blocks_exactly_as_one_pass_would():
    rng = np.random.default_rng(1)
    x = (1000 + rng.random((3 * splits._BLOCK_ROWS + 7, 5))).astype(np.float32)  # large mean, small spread
    rows = rng.permutation(len(x))[: 2 * splits._BLOCK_ROWS + 3]
    m = splits.moments(x, rows)
    exact = x[rows].astype(np.float64)
    assert m.n == len(rows)
    np.testing.assert_allclose(m.mean, exact.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(m.squares, ((exact - exact.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9)


@pytest.mark.parametrize(
    ("n", "test_fraction", "validation_fraction", "message"),
    [
        (10, 0.01, 0.2, r"split 8/2/0"),
        (10, 0.2, 0.0, r"split 8/0/2"),
        (10, 0.5, 0.5, "sum below 1"),
        (10, -0.1, 0.2, "in \\[0, 1\\)"),
    ],
)
def test_split_rejects_empty_parts(n, test_fraction, validation_fraction, message):
    x, y = _toy(n)
    with pytest.raises(DataError, match=message):
        splits.split(x, y, test_fraction, validation_fraction, seed=0)


def test_split_rejects_length_mismatch():
    with pytest.raises(DataError, match="Received: 4 samples, 3 labels"):
        splits.split(np.zeros((4, 1)), np.zeros(3), 0.25, 0.25, seed=0)
