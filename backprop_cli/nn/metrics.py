"""Metrics beside the loss: accuracy, R^2, the confusion matrix."""

from __future__ import annotations

import math

import numpy as np


def predicted_classes(out: np.ndarray) -> np.ndarray:
    """Class indices from the output layer: argmax of softmax rows, or sigmoid >= 0.5."""
    if out.shape[1] == 1:
        return (out[:, 0] >= 0.5).astype(np.int64)
    return out.argmax(axis=1)


def class_indices(y: np.ndarray) -> np.ndarray:
    """Class indices from encoded targets: (n,) indices, or (n, 1) 0/1 for BCE."""
    return np.asarray(y if y.ndim == 1 else y[:, 0], dtype=np.int64)


def count_correct(y: np.ndarray, out: np.ndarray) -> int:
    """How many rows the output layer classifies as their target class."""
    return int(np.count_nonzero(predicted_classes(out) == class_indices(y)))


def accuracy(y: np.ndarray, out: np.ndarray) -> float:
    return count_correct(y, out) / len(y) if len(y) else float("nan")


def squared_errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per output column, the sum over rows of (y - pred)^2 (in the arrays' dtype): R^2's numerator."""
    diff = y.reshape(len(y), -1) - pred.reshape(len(pred), -1)
    return (diff * diff).sum(axis=0)


def r2_from_sums(ss_res: np.ndarray, y: np.ndarray) -> float:
    """1 - ss_res / ss_tot per output column, averaged (sklearn's uniform_average); a constant
    column scores 1 when predicted exactly and 0 otherwise, as in sklearn."""
    y = y.reshape(len(y), -1).astype(np.float64)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(math.fsum(r2) / len(r2))


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination, averaged over output columns (sklearn's uniform_average)."""
    if len(y) == 0:
        return float("nan")
    y, pred = y.astype(np.float64), pred.astype(np.float64)
    return r2_from_sums(squared_errors(y, pred), y)


def confusion_matrix(y: np.ndarray, out: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (class_indices(y), predicted_classes(out)), 1)
    return cm
