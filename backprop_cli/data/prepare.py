"""From a dataset to training arrays: the splits (stratified for classification), the
standardization fitted on the training rows, the encoded targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import task_of
from ..errors import DataError
from .builtin import load_builtin
from .dataset import Dataset, streams
from .files import load_file
from .targets import class_labels, encode_classes, encode_targets


def load_dataset(data_cfg: dict, seed: int) -> Dataset:
    """The dataset a config's ``data`` section names (a built-in or a file)."""
    if data_cfg.get("dataset"):
        return load_builtin(
            data_cfg["dataset"], seed, data_cfg.get("n_samples"), data_cfg.get("noise")
        )
    return load_file(
        data_cfg["path"],
        data_cfg.get("target"),
        data_cfg.get("features"),
        bool(data_cfg.get("dropna")),
    )


def split_indices(
    n: int, strata: np.ndarray | None, validation: float, test: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices; stratified by ``strata`` (class indices) when given."""
    groups = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    )
    parts: list[list[np.ndarray]] = [[], [], []]
    for g in groups:
        g = rng.permutation(g)
        n_test = int(round(test * len(g)))
        n_val = int(round(validation * len(g)))
        if len(g) - n_test - n_val < 1 and len(g) > 0:
            n_val = max(0, len(g) - n_test - 1)
        parts[2].append(g[:n_test])
        parts[1].append(g[n_test : n_test + n_val])
        parts[0].append(g[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)  # type: ignore[return-value]


@dataclass
class Prepared:
    """The splits, standardized and encoded, ready for training; arrays in ``dtype``."""

    task: str
    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    mean: np.ndarray
    scale: np.ndarray
    classes: list | None
    dataset: Dataset
    indices: dict[str, np.ndarray]

    @property
    def n_features(self) -> int:
        return self.X["train"].shape[1]

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            return len(self.classes or [])
        return self.y["train"].shape[1]


def prepare(
    ds: Dataset,
    loss: str,
    seed: int,
    validation: float,
    test: float,
    standardize: bool,
    dtype=np.float32,
    where: str = "data",
) -> Prepared:
    """Split (stratified for classification), standardize on the training rows, encode targets."""
    task = task_of(loss)
    n = len(ds.X)
    classes = None
    strata = None
    if task == "classification":
        classes = class_labels(ds.targets, where)
        if len(classes) < 2:
            raise DataError(
                f"{where}: the target has a single class ({classes[0]!r}); classification needs at least 2"
            )
        if loss == "binary_cross_entropy" and len(classes) != 2:
            raise DataError(
                f"{where}: binary_cross_entropy needs exactly 2 classes, the target has {len(classes)}; "
                "use cross_entropy with a softmax layer of one unit per class"
            )
        strata = encode_classes(ds.targets, classes, where)
    train, val, tst = split_indices(n, strata, validation, test, streams(seed)["split"])
    for name, idx, frac in (("validation", val, validation), ("test", tst, test)):
        if frac > 0 and len(idx) == 0:
            per_class = (
                f" (the split is stratified: {len(classes)} classes of about {n / len(classes):.1f} rows each"
                f"{'; is the target column really a class label?' if len(classes) > n / 2 else ''})"
                if classes
                else ""
            )
            raise DataError(
                f"{where}: {n} rows are too few for a {name} split of {frac}{per_class}; "
                f"lower data.{name} or set it to 0"
            )
    if len(train) == 0:
        raise DataError(f"{where}: no rows left for training after the splits")
    mean, scale = _standardization(ds, train, standardize, where)
    y_all = encode_targets(ds.targets, loss, classes, where, dtype)
    Xs, ys, ids = {}, {}, {}
    for name, idx in (("train", train), ("val", val), ("test", tst)):
        Xs[name] = apply_preprocessing(ds.X[idx], mean, scale, dtype, where, ds.feature_names)
        ys[name] = y_all[idx]
        ids[name] = idx
    return Prepared(task, Xs, ys, mean, scale, classes, ds, ids)


def _standardization(ds: Dataset, train: np.ndarray, standardize: bool, where: str):
    """(mean, scale) of the training rows' features (scale 1 for a constant column), or the
    identity (0, 1) without standardization."""
    if not standardize:
        return np.zeros(ds.X.shape[1]), np.ones(ds.X.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, by column
        mean = ds.X[train].mean(axis=0)
        scale = ds.X[train].std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant (0), not NaN
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        col = ds.feature_names[int(np.argmax(bad))]
        raise DataError(
            f"{where}: column {col!r} has values too large to standardize (its mean or "
            "standard deviation overflows float64); rescale it"
        )
    return mean, scale


def apply_preprocessing(
    X: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    dtype,
    where: str | None = None,
    names: list[str] | None = None,
) -> np.ndarray:
    """(X - mean) / scale in ``dtype``; with ``where``, a value that does not fit ``dtype``
    (1e300 in float32) is a DataError naming its column instead of an Inf in the network."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray((X - mean) / scale, dtype=dtype)
    if where is not None:
        bad = ~np.isfinite(out).all(axis=0)
        if bad.any():
            j = int(np.argmax(bad))
            col = names[j] if names and j < len(names) else f"feature {j}"
            raise DataError(
                f"{where}: column {col!r} has values beyond {np.dtype(dtype).name} range after "
                "preprocessing; rescale it, set data.standardize: true, or use model.dtype: float64"
            )
    return out
