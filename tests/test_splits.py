"""A source's split into a run's parts: seeded, disjoint, standardized with the train rows' statistics
only, and the same scaling whether summed over the train rows or derived from all rows less the others."""

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


def test_scaling_sums_blocks_of_rows_in_float64():
    rng = np.random.default_rng(0)
    x = (1000 + rng.random((3 * splits._BLOCK_ROWS + 7, 5))).astype(np.float32)  # large mean, small spread
    rows = rng.permutation(len(x))[: 2 * splits._BLOCK_ROWS + 3]
    mean, std = splits.scaling(x, rows, "standard")
    exact = x[rows].astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(std, exact.std(axis=0), rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 3 * splits._BLOCK_ROWS),
    fractions=st.sampled_from([(0.1, 0.1), (0.2, 0.2), (0.45, 0.45), (0.05, 0.5)]),
    offset=st.sampled_from([0.0, 1000.0]),
    seed=st.integers(0, 2**16),
)
def test_scaling_from_all_rows_less_the_others_is_the_train_rows_scaling(n, fractions, offset, seed):
    rng = np.random.default_rng(seed)
    x = (offset + rng.random((n, 3))).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature
    train, val, test = splits.split_indices(n, *fractions, seed=seed)
    others = np.concatenate([val, test])
    direct = splits.scaling(x, train, "standard")
    derived = splits.scaling(x, train, "standard", splits.moments(x), others)
    np.testing.assert_allclose(derived[0], direct[0], rtol=1e-6)
    np.testing.assert_allclose(derived[1], direct[1], rtol=2e-4, atol=1e-6)
    assert derived[1][2] == 1.0


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
