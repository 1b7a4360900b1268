from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from hpcjobs.scores import macro_scores


def test_literal_with_a_class_never_predicted():
    # Class 2 is present twice but never predicted: its precision is 0/0 -> 0, recall 0, F1 0.
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1])
    got = macro_scores(y_true, y_pred, 3)
    assert got["accuracy"] == pytest.approx(3 / 6)
    assert got["precision_macro"] == pytest.approx((1 / 2 + 2 / 4 + 0) / 3)
    assert got["recall_macro"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert got["f1_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)


def test_class_absent_from_both_counts_as_zero():
    # Three output classes but only 0 and 1 appear: like sklearn with labels=range(3), zero_division=0.
    got = macro_scores(np.array([0, 1]), np.array([0, 1]), 3)
    assert got["accuracy"] == 1.0
    assert got["f1_macro"] == pytest.approx(2 / 3)


def test_all_wrong():
    got = macro_scores(np.array([0, 0]), np.array([1, 1]), 2)
    assert got == {"accuracy": 0.0, "precision_macro": 0.0, "recall_macro": 0.0, "f1_macro": 0.0}


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "message"),
    [
        ([0, 1], [0], 2, "same length"),
        ([], [], 2, "non-empty"),
        ([0, 2], [0, 1], 2, r"y_true as integer labels in 0..1"),
        ([0, 1], [0, -1], 2, "y_pred as integer labels"),
        ([0.0, 1.0], [0, 1], 2, "dtype float64"),
        ([0], [0], 0, "n_classes >= 1"),
    ],
)
def test_rejects_bad_inputs(y_true, y_pred, n_classes, message):
    with pytest.raises(ValueError, match=message):
        macro_scores(np.array(y_true), np.array(y_pred), n_classes)


_labels = st.integers(2, 6).flatmap(
    lambda k: st.tuples(
        st.just(k),
        st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=40),
    )
)


@given(_labels)
def test_scores_are_fractions_and_perfect_predictions_score_one(case):
    k, pairs = case
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    got = macro_scores(y_true, y_pred, k)
    assert all(0.0 <= value <= 1.0 for value in got.values())
    # Perfect predictions score 1 on every class that occurs; dead classes count 0 in the macro average.
    perfect = macro_scores(y_true, y_true, k)
    assert perfect["accuracy"] == 1.0
    assert perfect["f1_macro"] == pytest.approx(len(np.unique(y_true)) / k)
    every_class = np.concatenate([y_true, np.arange(k)])
    assert macro_scores(every_class, every_class, k)["f1_macro"] == 1.0


@settings(deadline=None)  # sklearn's input validation is slow on its first calls
@given(_labels)
def test_matches_sklearn(case):
    k, pairs = case
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), average="macro", zero_division=0
    )
    got = macro_scores(y_true, y_pred, k)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["precision_macro"] == pytest.approx(precision)
    assert got["recall_macro"] == pytest.approx(recall)
    assert got["f1_macro"] == pytest.approx(f1)
