"""Datasets: built-ins, CSV/TSV/Parquet/NPZ files, splits, standardization, label encoding.

Everything random here draws from generators derived from the config seed (see
``streams``), so the same seed gives the same data, the same split and, at eval time,
the same held-out rows again.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

CSV_BUILTINS = ("iris", "digits", "wine", "breast_cancer")
GENERATED = ("xor", "moons", "circles", "spirals", "friedman")
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npz")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for each use of randomness, all from one seed."""
    names = ("data", "split", "init", "shuffle", "dropout")  # appending keeps the earlier streams
    return {
        n: np.random.default_rng(s)
        for n, s in zip(names, np.random.SeedSequence(seed).spawn(len(names)), strict=True)
    }


def datasets_dir() -> Path:
    """datasets/ inside the installed package, or beside it in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "datasets", here.parent / "datasets"):
        if (candidate / "iris.csv").exists():
            return candidate
    raise DataError("the built-in datasets are missing from this installation (datasets/*.csv)")


@dataclass
class Dataset:
    """Raw features X (n, n_features) float64 and targets: labels (n,) or values (n, k)."""

    X: np.ndarray
    targets: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- generated


def _xor(n: int | None, noise: float | None, rng) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    labels = np.array([0, 1, 1, 0])
    n = n or 4
    idx = np.arange(n) % 4
    X = corners[idx] + rng.normal(
        0.0, noise if noise is not None else (0.0 if n == 4 else 0.1), (n, 2)
    )
    return X, labels[idx]


def _moons(n, noise, rng):
    n = n or 500
    n_out, n_in = n // 2, n - n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack(
        [np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)]]
    )
    y = np.r_[np.zeros(n_out, int), np.ones(n_in, int)]
    return X + rng.normal(0.0, 0.1 if noise is None else noise, X.shape), y


def _circles(n, noise, rng):
    n = n or 500
    n_out, n_in = n // 2, n - n // 2
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], 0.5 * np.c_[np.cos(t_in), np.sin(t_in)]])
    y = np.r_[np.zeros(n_out, int), np.ones(n_in, int)]
    return X + rng.normal(0.0, 0.05 if noise is None else noise, X.shape), y


def _spirals(n, noise, rng, k: int = 3):
    n = n or 600
    per = [n // k + (c < n % k) for c in range(k)]
    Xs, ys = [], []
    for c, m in enumerate(per):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, m) + rng.normal(
            0.0, 0.2 if noise is None else noise, m
        )
        Xs.append(np.c_[r * np.sin(t), r * np.cos(t)])
        ys.append(np.full(m, c))
    return np.vstack(Xs), np.concatenate(ys)


def _friedman(n, noise, rng):
    """Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise; x5..x9 are noise."""
    n = n or 2000
    X = rng.uniform(size=(n, 10))
    y = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
    )
    y += rng.normal(0.0, 1.0 if noise is None else noise, n)
    return X, y[:, None]


_GENERATORS = {
    "xor": _xor,
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "friedman": _friedman,
}


def load_builtin(
    name: str, seed: int, n_samples: int | None = None, noise: float | None = None
) -> Dataset:
    """A built-in dataset: generated from the seed, or read from datasets/NAME.csv."""
    source = {"dataset": name, "n_samples": n_samples, "noise": noise}
    if name in _GENERATORS:
        X, t = _GENERATORS[name](n_samples, noise, streams(seed)["data"])
        fnames = [f"x{i}" for i in range(X.shape[1])]
        return Dataset(
            X.astype(np.float64), t, fnames, ["y" if name == "friedman" else "class"], source
        )
    if name in CSV_BUILTINS:
        ds = load_table(datasets_dir() / f"{name}.csv", "target", None)
        ds.source = source
        return ds
    raise DataError(
        f"unknown dataset {name!r}; built-ins are {', '.join(GENERATED + CSV_BUILTINS)}"
    )


# ---------------------------------------------------------------------------- files


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise DataError(
                    f"{path}: reading Parquet needs pyarrow: pip install 'backprop-cli[parquet]'"
                ) from None
        sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot parse the file: {first}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _check_path(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except (OSError, ValueError) as e:  # no permission on a directory, a name too long, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise DataError(f"{path}: cannot open the data file ({reason})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: is a directory, expected a data file")
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; expected .csv, .tsv, .parquet or .npz"
        )


def load_table(
    path: Path,
    target: str | list[str] | None,
    features: list[str] | None,
    dropna: bool = False,
    need_target: bool = True,
) -> Dataset:
    """Features and target columns of a CSV/TSV/Parquet file, checked column by column."""
    _check_path(path)
    frame = _read_frame(path)
    if frame.shape[0] == 0:
        raise DataError(
            f"{path}: no data rows (only a header with columns {', '.join(map(str, frame.columns))})"
        )
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    targets = [target] if isinstance(target, str) else list(target or [])
    if need_target:
        if not targets:
            raise DataError(
                f"{path}: data.target is required for a table: name the target column (columns: {_list(columns)})"
            )
        missing = [t for t in targets if t not in columns]
        if missing:
            raise DataError(
                f"{path}: no target column {missing[0]!r}; the columns are {_list(columns)}"
            )
    feats = list(features) if features else [c for c in columns if c not in targets]
    for f in feats:
        if f in targets:
            raise DataError(
                f"{path}: column {f!r} is the target; it cannot be a feature too (data.features)"
            )
        if feats.count(f) > 1:
            raise DataError(f"{path}: data.features lists column {f!r} twice")
    missing = [f for f in feats if f not in columns]
    if missing:
        raise DataError(
            f"{path}: no feature column {missing[0]!r}; the columns are {_list(columns)}"
        )
    if not feats:
        raise DataError(f"{path}: no feature columns besides the target")
    present_targets = [t for t in targets if t in columns]
    frame = frame[feats + present_targets]
    if dropna:
        frame = frame.replace([np.inf, -np.inf], np.nan).dropna()
        if frame.shape[0] == 0:
            raise DataError(f"{path}: no rows left after data.dropna removed rows with empty cells")
    non_numeric = [c for c in feats if not _is_numeric(frame[c])]
    if non_numeric:
        raise DataError(
            f"{path}: feature column(s) {_list(non_numeric)} are not numeric; "
            "encode them as numbers or leave them out with data.features"
        )
    X = frame[feats].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        col = int(np.argmax(bad.any(axis=0)))
        raise DataError(
            f"{path}: column {feats[col]!r} has {int(bad[:, col].sum())} empty, NaN or Inf cell(s) "
            f"({int(bad.any(axis=1).sum())} row(s) in all); fix them or set data.dropna: true"
        )
    if present_targets:
        t = frame[present_targets]
        if t.isna().to_numpy().any():
            col = present_targets[int(np.argmax(t.isna().to_numpy().any(axis=0)))]
            raise DataError(
                f"{path}: target column {col!r} has {int(t[col].isna().sum())} empty cell(s); "
                "fix them or set data.dropna: true"
            )
        targets_arr = t.to_numpy() if len(present_targets) > 1 else t.iloc[:, 0].to_numpy()
    else:
        targets_arr = np.empty((len(X), 0))
    return Dataset(X, targets_arr, feats, present_targets, {})


def _is_numeric(col) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _list(names, limit: int = 12) -> str:
    names = [str(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_npz(path: Path) -> Dataset:
    """Arrays X (n, n_features) and y (n,) or (n, k) from an .npz file; nothing is unpickled."""
    from .store.npz import NpzReader, npz_errors

    _check_path(path)
    what = ".npz data file"
    with npz_errors(path, what, DataError), NpzReader(path, what, DataError) as z:
        if "X" not in z.headers or "y" not in z.headers:
            raise DataError(
                f"{path}: an .npz data file needs arrays 'X' and 'y' (found {', '.join(z.headers) or 'none'})"
            )
        for name, kinds, expected in (
            ("X", "iuf", "numbers"),
            ("y", "biufU", "numbers or strings"),
        ):
            dt = z.dtype(name)
            if dt.kind not in kinds:
                extra = "; object arrays are refused (never unpickled)" if dt.hasobject else ""
                raise DataError(f"{path}: {name} has dtype {dt}, expected {expected}{extra}")
        X, y = z.read("X"), z.read("y")
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise DataError(
            f"{path}: X must be a 2-D numeric array (got shape {X.shape}, dtype {X.dtype})"
        )
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise DataError(f"{path}: y must have one row per row of X ({len(X)}), got shape {y.shape}")
    if not np.isfinite(X).all():
        raise DataError(
            f"{path}: X has {int((~np.isfinite(X)).any(axis=1).sum())} row(s) with NaN or Inf"
        )
    names = [f"x{i}" for i in range(X.shape[1])]
    return Dataset(X.astype(np.float64), y, names, ["y"], {})


def load_file(
    path: str | Path, target=None, features=None, dropna: bool = False, need_target: bool = True
) -> Dataset:
    """A data file by its extension; its source records the absolute path and its sha256."""
    p = Path(path).expanduser()
    ds = (
        load_npz(p)
        if p.suffix.lower() == ".npz"
        else load_table(p, target, features, dropna, need_target)
    )
    ds.source = {
        "path": str(p.resolve()),
        "sha256": file_digest(p),
        "target": target,
        "features": ds.feature_names,
    }
    return ds


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


# ---------------------------------------------------------------------------- targets


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
            f"{where}: label {e.args[0]!r} was not among the training classes {_list(classes)}"
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


# ---------------------------------------------------------------------------- splits


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
    from .nn.losses import CLASSIFICATION_LOSSES

    task = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
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
    if standardize:
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
    else:
        mean, scale = np.zeros(ds.X.shape[1]), np.ones(ds.X.shape[1])
    y_all = encode_targets(ds.targets, loss, classes, where, dtype)
    Xs, ys, ids = {}, {}, {}
    for name, idx in (("train", train), ("val", val), ("test", tst)):
        Xs[name] = apply_preprocessing(ds.X[idx], mean, scale, dtype, where, ds.feature_names)
        ys[name] = y_all[idx]
        ids[name] = idx
    return Prepared(task, Xs, ys, mean, scale, classes, ds, ids)


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


def describe_builtins() -> list[dict]:
    """Name, rows, features, task and classes of every built-in dataset (default sizes)."""
    out = []
    for name in GENERATED + CSV_BUILTINS:
        ds = load_builtin(name, 0)
        task = "regression" if name == "friedman" else "classification"
        n_classes = len(class_labels(ds.targets, name)) if task == "classification" else None
        out.append(
            {
                "name": name,
                "rows": len(ds.X),
                "features": ds.X.shape[1],
                "task": task,
                "classes": n_classes,
                "kind": "generated" if name in GENERATED else "csv",
            }
        )
    return out
