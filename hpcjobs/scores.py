"""Classification scores Keras does not report: macro-averaged precision, recall and F1.

Same values as scikit-learn's precision/recall/f1_score(average="macro", labels=range(K), zero_division=0):
a class that is never predicted (or never present) scores 0 instead of raising or warning, and every one
of the K classes counts in the average, so a dead output class lowers the macro score as it should.
"""

from __future__ import annotations

import numpy as np


def macro_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """accuracy, precision_macro, recall_macro, f1_macro from integer labels in 0..n_classes-1."""
    truth, pred = _checked(y_true, y_pred, n_classes)
    confusion = np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = _ratio(true_pos, predicted)
    recall = _ratio(true_pos, actual)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) and stays defined when P or R is 0/0.
    f1 = _ratio(2 * true_pos, predicted + actual)
    return {
        "accuracy": float(true_pos.sum() / len(truth)),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _checked(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if truth.ndim != 1 or truth.shape != pred.shape or truth.size == 0:
        raise ValueError(
            "Expected y_true and y_pred as non-empty 1-D arrays of the same length. "
            f"Received: shapes {truth.shape} and {pred.shape}"
        )
    if n_classes < 1:
        raise ValueError(f"Expected n_classes >= 1. Received: {n_classes}")
    for name, labels in (("y_true", truth), ("y_pred", pred)):
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(
                f"Expected {name} as integer labels in 0..{n_classes - 1}. "
                f"Received: dtype {labels.dtype}, range {labels.min()}..{labels.max()}"
            )
    return truth.astype(np.int64), pred.astype(np.int64)
