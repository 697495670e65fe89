"""Metrics beside the loss, as scikit-learn's ``sklearn.metrics`` defines them (tested against
it): accuracy, the confusion matrix, precision, recall and F1 (per class and macro),
balanced accuracy, ROC-AUC (binary; one-vs-rest macro for several classes), log loss;
R^2, MAE and RMSE per target column and their mean. Multi-label (several 0/1 targets, an
output unit each, 1 when >= 0.5): subset accuracy (every label right, sklearn's
accuracy_score), label accuracy (1 - hamming_loss), and per label, macro-averaged,
precision, recall, F1, balanced accuracy and ROC-AUC; log loss is the mean binary
cross-entropy over every label."""

from __future__ import annotations

import math

import numpy as np


def predicted_classes(out: np.ndarray) -> np.ndarray:
    """Class indices from the output layer: argmax of softmax rows, or sigmoid >= 0.5."""
    if out.shape[1] == 1:
        return (out[:, 0] >= 0.5).astype(np.int64)
    return out.argmax(axis=1)


def class_indices(y: np.ndarray) -> np.ndarray:
    """Class indices from encoded targets: (n,) indices, (n, 1) 0/1, or (n, k) one-hot rows."""
    if y.ndim == 1:
        return np.asarray(y, dtype=np.int64)
    return np.asarray(y[:, 0] if y.shape[1] == 1 else y.argmax(axis=1), dtype=np.int64)


def count_correct(y: np.ndarray, out: np.ndarray, multilabel: bool = False) -> int:
    """How many rows the output layer classifies as their target class (multi-label: every
    label of the row right)."""
    if multilabel:
        return int(np.count_nonzero(((out >= 0.5) == (y >= 0.5)).all(axis=1)))
    return int(np.count_nonzero(predicted_classes(out) == class_indices(y)))


def accuracy(y: np.ndarray, out: np.ndarray, multilabel: bool = False) -> float:
    return count_correct(y, out, multilabel) / len(y) if len(y) else float("nan")


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


def probabilities(out: np.ndarray) -> np.ndarray:
    """(n, k) class probabilities from the output layer (one sigmoid unit: [1 - p, p]).
    Rows that are not a distribution (one sigmoid unit per class, or mse's outputs) are
    clipped at 0 and divided by their sum (a row of zeros: 1/k each); softmax rows stay."""
    out = np.asarray(out, dtype=np.float64)
    if out.shape[1] == 1:
        return np.c_[1.0 - out[:, 0], out[:, 0]]
    sums = out.sum(axis=1, keepdims=True)
    if out.size == 0 or (out.min() >= 0 and np.all(np.abs(sums - 1.0) <= 1e-6)):
        return out
    p = np.maximum(out, 0.0)
    total = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p / total, 1.0 / out.shape[1])


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per class, from a confusion matrix (rows true, columns predicted); 0 where undefined
    (no prediction, or no row, of the class), as sklearn's zero_division=0."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / both, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def balanced_accuracy(cm: np.ndarray) -> float:
    """The mean recall over the classes that have rows."""
    cm = np.asarray(cm, dtype=np.float64)
    actual = cm.sum(axis=1)
    present = actual > 0
    return float(np.mean(np.diag(cm)[present] / actual[present])) if present.any() else math.nan


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve: the probability that a positive row scores above a
    negative one (ties count half), from the ranks (Mann-Whitney U); NaN with one kind only."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score, dtype=np.float64)[order]
    ranks = np.empty(len(s))
    start = 0
    while start < len(s):  # tied scores share their average rank
        end = start
        while end + 1 < len(s) and s[end + 1] == s[start]:
            end += 1
        ranks[start : end + 1] = (start + end) / 2 + 1
        start = end + 1
    rank_sum = ranks[positive[order]].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y: np.ndarray, out: np.ndarray) -> float:
    """Binary ROC-AUC of the positive class's probability; one-vs-rest, macro, for more classes."""
    truth, p = class_indices(y), probabilities(out)
    if p.shape[1] == 2:
        return binary_auc(truth == 1, p[:, 1])
    aucs = [binary_auc(truth == c, p[:, c]) for c in range(p.shape[1])]
    return float(np.mean(aucs))  # NaN when a class has no rows: undefined, as in sklearn


def log_loss(y: np.ndarray, out: np.ndarray) -> float:
    """-mean log p(true class), probabilities clipped to [eps, 1 - eps] (float64's eps)."""
    truth, p = class_indices(y), probabilities(out)
    eps = np.finfo(np.float64).eps
    picked = np.clip(p[np.arange(len(truth)), truth], eps, 1 - eps)
    return float(-np.mean(np.log(picked))) if len(truth) else math.nan


def classification_report(y: np.ndarray, out: np.ndarray, classes: list) -> dict:
    """Every classification metric of ``out`` against ``y``, macro and per class."""
    cm = confusion_matrix(y, out, len(classes))
    prf = precision_recall_f1(cm)
    report = {
        "accuracy": accuracy(y, out),
        "balanced_accuracy": balanced_accuracy(cm),
        **{f"{k}_macro": float(v.mean()) for k, v in prf.items()},
        "roc_auc": roc_auc(y, out),
        "log_loss": log_loss(y, out),
        "per_class": {
            str(c): {k: float(v[i]) for k, v in prf.items()} | {"rows": int(cm[i].sum())}
            for i, c in enumerate(classes)
        },
    }
    return report


def multilabel_report(y: np.ndarray, out: np.ndarray, labels: list) -> dict:
    """Every metric of a multi-label output: subset and label accuracy, and per label (a
    binary problem each) precision, recall, F1, balanced accuracy, ROC-AUC, macro-averaged;
    log loss over every label."""
    truth, pred = np.asarray(y) >= 0.5, np.asarray(out) >= 0.5
    per, auc, balanced = {}, [], []
    for j, label in enumerate(labels):
        cm = np.zeros((2, 2), dtype=np.int64)
        np.add.at(cm, (truth[:, j].astype(int), pred[:, j].astype(int)), 1)
        prf = precision_recall_f1(cm)
        per[str(label)] = {k: float(v[1]) for k, v in prf.items()} | {"rows": int(cm[1].sum())}
        balanced.append(balanced_accuracy(cm))
        auc.append(binary_auc(truth[:, j], np.asarray(out, dtype=np.float64)[:, j]))
    eps = np.finfo(np.float64).eps
    p = np.clip(np.asarray(out, dtype=np.float64), eps, 1 - eps)
    bce = -(truth * np.log(p) + (~truth) * np.log1p(-p))
    return {
        "accuracy": accuracy(y, out, multilabel=True),
        "label_accuracy": float(np.mean(truth == pred)) if len(y) else math.nan,
        "balanced_accuracy": float(np.mean(balanced)),
        **{
            f"{k}_macro": float(np.mean([v[k] for v in per.values()]))
            for k in ("precision", "recall", "f1")
        },
        "roc_auc": float(np.mean(auc)),
        "log_loss": float(np.mean(bce)) if len(y) else math.nan,
        "per_class": per,
    }


def regression_report(y: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    """R^2, MAE and RMSE of each target column and their mean (uniform average)."""
    y = y.reshape(len(y), -1).astype(np.float64)
    pred = pred.reshape(len(pred), -1).astype(np.float64)
    if len(names) != y.shape[1]:
        names = [f"y{j}" for j in range(y.shape[1])]
    err = y - pred
    mae = np.abs(err).mean(axis=0)
    rmse = np.sqrt((err * err).mean(axis=0))
    r2 = [r2_score(y[:, j], pred[:, j]) for j in range(y.shape[1])]
    return {
        "r2": r2_score(y, pred),
        "mae": float(mae.mean()),
        "rmse": float(rmse.mean()),
        "per_target": {
            n: {"r2": r2[j], "mae": float(mae[j]), "rmse": float(rmse[j])}
            for j, n in enumerate(names)
        },
    }
