"""The built-in datasets: generated from the seed (xor, moons, circles, spirals, friedman) or
read from datasets/NAME.csv (iris, digits, wine, breast_cancer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import BUILTIN_DATASETS
from ..errors import DataError
from .dataset import Dataset, numeric_dataset, streams
from .files import load_table
from .targets import class_labels

CSV_BUILTINS = ("iris", "digits", "wine", "breast_cancer", "penguins")
TARGETS = {"penguins": "species"}  # the target column of a CSV built-in; else "target"
TASKS = {"friedman": "regression"}  # the others are classification


def datasets_dir() -> Path:
    """datasets/ inside the installed package, or beside it in a source checkout."""
    here = Path(__file__).resolve().parent.parent  # the package
    for candidate in (here / "datasets", here.parent / "datasets"):
        if (candidate / "iris.csv").exists():
            return candidate
    raise DataError("the built-in datasets are missing from this installation (datasets/*.csv)")


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


def _rare(n, noise, rng):
    """Two overlapping Gaussian clouds in 2-D, the second class 5% of the rows: a classifier
    that ignores it is 95% accurate, which is the trouble class_weight solves."""
    n = n or 2000
    n_rare = max(2, n // 20)
    common = rng.normal(0.0, 1.0 if noise is None else noise, (n - n_rare, 2))
    rare = rng.normal(1.5, 1.0 if noise is None else noise, (n_rare, 2))
    return np.vstack([common, rare]), np.r_[np.zeros(n - n_rare, int), np.ones(n_rare, int)]


_GENERATORS = {
    "xor": _xor,
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "friedman": _friedman,
    "rare": _rare,
}


GENERATED_FEATURES = {"xor": 2, "moons": 2, "circles": 2, "spirals": 2, "friedman": 10, "rare": 2}


def builtin_features(name: str) -> list[str]:
    """The feature names of a built-in, known without generating or reading its rows."""
    if name in GENERATED_FEATURES:
        return [f"x{i}" for i in range(GENERATED_FEATURES[name])]
    if name in CSV_BUILTINS:
        with (datasets_dir() / f"{name}.csv").open(encoding="utf-8") as f:
            header = f.readline()
        return [c for c in header.strip().split(",") if c != TARGETS.get(name, "target")]
    raise DataError(f"unknown dataset {name!r}; built-ins are {', '.join(BUILTIN_DATASETS)}")


def load_builtin(
    name: str, seed: int, n_samples: int | None = None, noise: float | None = None
) -> Dataset:
    """A built-in dataset: generated from the seed, or read from datasets/NAME.csv."""
    source = {"dataset": name, "n_samples": n_samples, "noise": noise}
    if name in _GENERATORS:
        X, t = _GENERATORS[name](n_samples, noise, streams(seed)["data"])
        return numeric_dataset(X, t, ["y" if name == "friedman" else "class"], source)
    if name in CSV_BUILTINS:
        ds = load_table(datasets_dir() / f"{name}.csv", TARGETS.get(name, "target"), None)
        ds.source = source
        return ds
    raise DataError(f"unknown dataset {name!r}; built-ins are {', '.join(BUILTIN_DATASETS)}")


def describe_builtins() -> list[dict]:
    """Name, rows, features, task and classes of every built-in dataset (default sizes)."""
    out = []
    for name in BUILTIN_DATASETS:
        ds = load_builtin(name, 0)
        task = TASKS.get(name, "classification")
        n_classes = len(class_labels(ds.targets, name)) if task == "classification" else None
        out.append(
            {
                "name": name,
                "rows": len(ds),
                "features": ds.features.shape[1],
                "task": task,
                "classes": n_classes,
                "kind": "generated" if name in _GENERATORS else "csv",
            }
        )
    return out
