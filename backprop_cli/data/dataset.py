"""The record every data source gives (``Dataset``) and the random streams of a run.

Everything random draws from generators derived from the config seed (``streams``), so the
same seed gives the same data, the same split and, at eval time, the same held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for each use of randomness, all from one seed."""
    names = ("data", "split", "init", "shuffle", "dropout")  # appending keeps the earlier streams
    return {
        n: np.random.default_rng(s)
        for n, s in zip(names, np.random.SeedSequence(seed).spawn(len(names)), strict=True)
    }


@dataclass
class Dataset:
    """Raw features X (n, n_features) float64 and targets: labels (n,) or values (n, k)."""

    X: np.ndarray
    targets: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)


def name_list(names, limit: int = 12) -> str:
    """Column names for a message: the first ``limit``, then how many in all."""
    names = [str(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
