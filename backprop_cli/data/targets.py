"""Targets as the losses take them: class labels to indices, regression values as floats."""

from __future__ import annotations

import numpy as np

from ..config.models import task_of
from ..errors import DataError
from .dataset import name_list


def class_labels(targets: np.ndarray, where: str) -> list:
    """The sorted distinct class labels, as plain JSON-able values."""
    if targets.ndim != 1:
        raise DataError(f"{where}: classification needs one target column (got {targets.shape[1]})")
    values = targets.tolist()
    try:
        classes = sorted(set(values))
    except TypeError:  # mixed types: compare as text
        classes = sorted({str(v) for v in values})
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


def encode_classes(targets: np.ndarray, classes: list, where: str) -> np.ndarray:
    """Class indices (n,) of the labels; a label outside ``classes`` is an error naming it."""
    index = {c: i for i, c in enumerate(classes)}
    if classes and isinstance(classes[0], str):
        keys = [str(v) for v in targets.tolist()]
    else:
        keys = targets.tolist()
    try:
        return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    except KeyError as e:
        raise DataError(
            f"{where}: label {e.args[0]!r} was not among the training classes {name_list(classes)}"
        ) from None


def regression_targets(targets: np.ndarray, where: str) -> np.ndarray:
    t = targets.reshape(len(targets), -1)
    try:
        t = t.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{where}: regression needs numeric targets; use cross_entropy for class labels"
        ) from None
    if not np.isfinite(t).all():
        raise DataError(f"{where}: the target has NaN or Inf values")
    return t


def label_columns(targets: np.ndarray, names: list[str], where: str, dtype) -> np.ndarray:
    """Multi-label targets (n, k): every column 0/1 (numbers or true/false)."""
    t = targets.reshape(len(targets), -1)
    try:
        values = t.astype(np.float64)
    except (TypeError, ValueError):
        values = None
    bad = None if values is None else ~np.isin(values, (0.0, 1.0))
    if values is None or bad.any():
        j = 0 if values is None else int(np.argmax(bad.any(axis=0)))
        name = names[j] if j < len(names) else f"column {j}"
        raise DataError(
            f"{where}: target column {name!r} is not 0/1; several target columns classify as "
            "labels, each 0 or 1 (data.task: regression predicts values)"
        )
    return values.astype(dtype)


def encode_targets(
    targets: np.ndarray,
    loss: str,
    classes: list | None,
    where: str,
    dtype,
    task: str | None = None,
    units: int | None = None,
    multilabel: bool = False,
    names: list[str] | None = None,
) -> np.ndarray:
    """Targets as the loss takes them. Classification: class indices (n,) for cross_entropy;
    for the other losses a 0/1 column (n, 1) when the output layer has 1 ``units`` and there
    are two classes, else one-hot rows (n, k); multi-label: the 0/1 columns (n, k).
    Regression: the values (n, k). ``task`` None: the loss's (task_of); ``units`` None: 1
    for binary_cross_entropy (two classes), one per class for the others."""
    if (task or task_of(loss)) == "classification":
        if multilabel:
            if loss == "cross_entropy":
                raise DataError(
                    f"{where}: cross_entropy takes one target column of class labels; several "
                    "0/1 label columns (multi-label) take binary_cross_entropy, a sigmoid unit each"
                )
            return label_columns(targets, names or [], where, dtype)
        idx = encode_classes(targets, classes or [], where)
        if loss == "cross_entropy":
            return idx
        k = len(classes or [])
        if units is None and loss == "binary_cross_entropy" and k != 2:
            raise DataError(
                f"{where}: binary_cross_entropy with one output unit needs 2 classes, the target "
                f"has {k}; give the output layer one sigmoid unit per class"
            )
        if (units or (1 if loss == "binary_cross_entropy" else k)) == 1 and k == 2:
            return idx.astype(dtype)[:, None]
        return np.eye(k, dtype=dtype)[idx]  # (a 1-unit layer for k > 2 classes is refused later)
    with np.errstate(over="ignore"):
        t = regression_targets(targets, where).astype(dtype)
    if not np.isfinite(t).all():
        raise DataError(
            f"{where}: the target has values beyond {np.dtype(dtype).name} range; "
            "rescale it or use model.dtype: float64"
        )
    return t
