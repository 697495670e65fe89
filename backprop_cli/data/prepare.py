"""From a dataset to training arrays: the splits (stratified for classification), the
columns' encoding (data/columns.py) and the standardization fitted on the training rows,
the encoded targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import task_of
from ..config.models import DataConfig
from ..errors import DataError
from ..store.weights import ColumnSpec
from .builtin import load_builtin
from .columns import encode, encoded_names, fit_columns, scaled
from .dataset import Dataset, streams
from .files import load_file
from .splitfiles import SPLIT_FILES, with_split_files
from .targets import class_labels, encode_classes, encode_targets, regression_targets


def load_dataset(data: DataConfig, seed: int) -> Dataset:
    """The dataset a config's ``data`` section names (a built-in or a file, followed by the
    rows of its split files)."""
    if data.dataset:
        if data.sample_weight:
            raise DataError(
                f"data.sample_weight: {data.sample_weight!r} names a column of a file; "
                f"the built-in {data.dataset} has none"
            )
        return load_builtin(data.dataset, seed, data.n_samples, data.noise)
    ds = load_file(
        data.path, data.target, data.features, data.dropna, sep=data.sep, weight=data.sample_weight
    )
    return with_split_files(ds, data)


def split_indices(
    n: int,
    strata: np.ndarray | None,
    validation: float,
    test: float,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices; stratified by ``strata`` (class indices) when given;
    rng None: in the rows' order (the first training, the last test)."""
    groups = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    )
    parts: list[list[np.ndarray]] = [[], [], []]
    for g in groups:
        g = rng.permutation(g) if rng is not None else g[::-1]  # reversed: the test rows last
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
    """The splits, encoded, standardized and in ``dtype``, ready for training; how the raw
    columns were encoded (``columns``) and standardized (``mean``, ``scale``)."""

    task: str
    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    mean: np.ndarray
    scale: np.ndarray
    classes: list | None
    dataset: Dataset
    indices: dict[str, np.ndarray]
    columns: list[ColumnSpec]
    y_mean: np.ndarray | None = None  # regression targets standardized: y = y_mean + y_scale t
    y_scale: np.ndarray | None = None
    multilabel: bool = False  # several 0/1 target columns; ``classes`` are their names

    def sample_weights(self, split: str) -> np.ndarray | None:
        """The rows' weights of a split (data.sample_weight), or None."""
        w = self.dataset.weights
        return None if w is None else w[self.indices[split]]

    def unscale(self, t: np.ndarray) -> np.ndarray:
        """Targets or outputs back in the target's units (float64)."""
        t = np.asarray(t, dtype=np.float64)
        return t if self.y_mean is None else t * self.y_scale + self.y_mean

    @property
    def n_features(self) -> int:
        return self.X["train"].shape[1]

    @property
    def feature_names(self) -> list[str]:
        """The network's inputs: the encoded columns."""
        return encoded_names(self.columns)

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            return len(self.classes or [])
        return self.y["train"].shape[1]


def is_multilabel(ds: Dataset, task: str) -> bool:
    """Classification with several target columns: each a 0/1 label."""
    return task == "classification" and ds.targets.ndim == 2 and ds.targets.shape[1] > 1


def split_rows(
    ds: Dataset,
    loss: str,
    seed: int,
    validation: float,
    test: float,
    where: str,
    task: str | None = None,
    split: str = "random",
) -> tuple[list | None, dict[str, np.ndarray]]:
    """(the classes for classification (multi-label: the label columns' names), else None;
    the train/val/test row indices), split from the seed, stratified by class (not for
    multi-label), or with ``split`` "ordered" in the rows' order (the first training, then
    validation, the last test): the same rows every time, at training and at eval."""
    n = len(ds)
    classes = strata = None
    task = task or task_of(loss)
    if is_multilabel(ds, task):
        k = ds.targets.shape[1]
        names = ds.target_names if len(ds.target_names) == k else [f"y{j}" for j in range(k)]
        classes = list(names)
    elif task == "classification":
        classes = class_labels(ds.targets, where)
        if len(classes) < 2:
            raise DataError(
                f"{where}: the target has a single class ({classes[0]!r}); classification needs at least 2"
            )
        strata = encode_classes(ds.targets, classes, where)
    if split == "ordered":
        train, val, tst = split_indices(n, None, validation, test, None)
        if strata is not None:  # a file sorted by class would leave its last classes out
            missing = sorted(set(range(len(classes))) - set(strata[train].tolist()))
            if missing:
                raise DataError(
                    f"{where}: data.split: ordered leaves class {classes[missing[0]]!r} out of "
                    f"the training rows (the first {len(train)} of the file); is the file sorted "
                    "by class? use data.split: random, or shuffle the file"
                )
    else:
        train, val, tst = split_indices(n, strata, validation, test, streams(seed)["split"])
    for name, idx, frac in (("validation", val, validation), ("test", tst, test)):
        if frac > 0 and len(idx) == 0:
            per_class = (
                f" (the split is stratified: {len(classes)} classes of about {n / len(classes):.1f} rows each"
                f"{'; is the target column really a class label?' if len(classes) > n / 2 else ''})"
                if strata is not None and split != "ordered"
                else ""
            )
            raise DataError(
                f"{where}: {n} rows are too few for a {name} split of {frac}{per_class}; "
                f"lower data.{name} or set it to 0"
            )
    if len(train) == 0:
        raise DataError(f"{where}: no rows left for training after the splits")
    return classes, {"train": train, "val": val, "test": tst}


def prepare(
    ds: Dataset,
    data: DataConfig,
    loss: str,
    seed: int,
    dtype=np.float32,
    where: str = "data",
    scale_target: bool = False,
    task: str | None = None,
    units: int | None = None,
) -> Prepared:
    """Split, fit the columns' encoding and the standardization on the training rows, encode
    every split and the targets (standardized too with ``scale_target``, for regression;
    for classification as the loss and the output layer's ``units`` take them:
    ``encode_targets``). Splits from their own files (``ds.given``) are those rows; the rest
    is split from the training file's rows. ``task`` None: the loss's."""
    task = task or task_of(loss)
    own = ds.own()
    classes, ids = split_rows(own, loss, seed, data.validation, data.test, where, task, data.split)
    multilabel = is_multilabel(ds, task)
    for split, rows in ds.given.items():
        ids[split] = rows
        if classes is not None and not multilabel:  # a label the training rows never had
            key = SPLIT_FILES[split]
            encode_classes(ds.targets[rows], classes, f"data.{key}: {getattr(data, key)}")
    columns = fit_columns(ds.features.iloc[ids["train"]], data, where)
    E, _ = encode(ds.features, columns, where)
    mean, scale = standardization(E[ids["train"]], columns, data.standardize, where)
    y_all = encode_targets(
        ds.targets, loss, classes, where, dtype, task, units, multilabel, classes
    )
    y_mean = y_scale = None
    if classes is None and scale_target:
        y_all, y_mean, y_scale = standardize_target(ds.targets, ids["train"], where, dtype)
    names = encoded_names(columns)
    Xs = {k: apply_preprocessing(E[i], mean, scale, dtype, where, names) for k, i in ids.items()}
    ys = {k: y_all[i] for k, i in ids.items()}
    return Prepared(
        task, Xs, ys, mean, scale, classes, ds, ids, columns, y_mean, y_scale, multilabel
    )


def standardize_target(targets: np.ndarray, train: np.ndarray, where: str, dtype):
    """Regression targets as (y - mean) / std of the training rows, per column (std 1 for a
    constant column), in ``dtype``; and the mean and std, to give predictions back in units."""
    t = regression_targets(targets, where)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = t[train].mean(axis=0), t[train].std(axis=0)
    scale[scale == 0] = 1.0
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise DataError(
            f"{where}: the target has values too large to standardize; rescale it, or set "
            "data.standardize_target: false"
        )
    return ((t - mean) / scale).astype(dtype), mean, scale


def standardization(E: np.ndarray, columns: list[ColumnSpec], standardize: bool, where: str):
    """(mean, scale) of the encoded training rows' numeric columns (scale 1 for a constant
    one; one-hot columns 0 and 1), or the identity without standardization."""
    width = E.shape[1]
    if not standardize:
        return np.zeros(width), np.ones(width)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, by column
        mean = E.mean(axis=0)
        scale = E.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant (0), not NaN
    numeric = scaled(columns)
    mean[~numeric], scale[~numeric] = 0.0, 1.0
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        col = encoded_names(columns)[int(np.argmax(bad))]
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
