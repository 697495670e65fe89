"""Targets as the losses take them: class labels to indices, regression values as floats."""

from __future__ import annotations

import numpy as np

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


def encode_targets(
    targets: np.ndarray, loss: str, classes: list | None, where: str, dtype
) -> np.ndarray:
    """Targets as the loss takes them: indices (n,) for cross_entropy, (n, 1) 0/1 for BCE, (n, k) values otherwise."""
    if loss == "cross_entropy":
        return encode_classes(targets, classes or [], where)
    if loss == "binary_cross_entropy":
        return encode_classes(targets, classes or [], where).astype(dtype)[:, None]
    with np.errstate(over="ignore"):
        t = regression_targets(targets, where).astype(dtype)
    if not np.isfinite(t).all():
        raise DataError(
            f"{where}: the target has values beyond {np.dtype(dtype).name} range; "
            "rescale it or use model.dtype: float64"
        )
    return t
