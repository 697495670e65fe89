"""The record every data source gives (``Dataset``) and the random streams of a run.

Everything random draws from generators derived from the config seed (``streams``), so the
same seed gives the same data, the same split and, at eval time, the same held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError


def streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for each use of randomness, all from one seed."""
    names = ("data", "split", "init", "shuffle", "dropout")  # appending keeps the earlier streams
    return {
        n: np.random.default_rng(s)
        for n, s in zip(names, np.random.SeedSequence(seed).spawn(len(names)), strict=True)
    }


@dataclass
class Dataset:
    """Raw feature columns as the source has them (a pandas DataFrame: numbers, text, booleans,
    gaps) and targets: labels (n,) or values (n, k)."""

    features: Any  # pandas.DataFrame (imported where used: ``backprop --help`` stays fast)
    targets: np.ndarray
    target_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)
    weights: np.ndarray | None = None  # each row's weight in the loss (data.sample_weight)
    # Splits read from their own files (data.validation_path, data.test_path): split -> row
    # indices, all after the training file's ``own_rows`` rows.
    given: dict[str, np.ndarray] = field(default_factory=dict)
    own_rows: int | None = None

    def own(self) -> Dataset:
        """The training file's rows alone (all rows when no split came from a file)."""
        if self.own_rows is None:
            return self
        n = self.own_rows
        w = None if self.weights is None else self.weights[:n]
        return Dataset(self.features.iloc[:n], self.targets[:n], self.target_names, self.source, w)

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.features.columns]

    @property
    def X(self) -> np.ndarray:
        """The features as a float64 matrix (numeric sources: the built-ins, .npz files)."""
        return self.features.to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.features)


def numeric_dataset(X: np.ndarray, targets, target_names: list[str], source=None) -> Dataset:
    """A Dataset of numeric features x0, x1, ... from a matrix."""
    import pandas as pd

    names = [f"x{i}" for i in range(X.shape[1])]
    features = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=names, copy=False)
    return Dataset(features, targets, target_names, dict(source or {}))


def checked_weights(w: np.ndarray, where: str) -> np.ndarray:
    """Rows' weights in the loss (float64, n): numbers >= 0, every one given, not all 0;
    ``where`` names them in an error (a file's column, or an argument)."""
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise DataError(
            f"{where} has {int(bad.sum())} cell(s) that are empty, negative or not finite; "
            "a weight is a number >= 0"
        )
    if not w.any():
        raise DataError(f"{where} is all zeros")
    return w


def name_list(names, limit: int = 12) -> str:
    """Column names for a message: the first ``limit``, then how many in all."""
    names = [str(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
