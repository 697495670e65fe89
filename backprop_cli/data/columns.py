"""Feature columns as the network sees them: each raw column numeric or categorical, its gaps
filled and its categories one-hot encoded, everything learned from the training rows only.

``fit_columns`` learns a ``ColumnSpec`` per raw column (the type, inferred from the values
and overridable in ``data.columns``; the fill value; the categories), which the weights spec
stores as JSON; ``encode`` applies them to any rows (training, a held-out split, a new
file), so eval and predict see exactly what training saw. The encoded matrix is then
standardized like any numeric input (numeric-derived columns only; a one-hot column keeps
its 0/1): the reference is scikit-learn's ColumnTransformer of SimpleImputer + StandardScaler
and OneHotEncoder(handle_unknown="ignore") (tests/test_columns.py).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..config.models import MAX_DISTINCT, ColumnConfig, DataConfig
from ..errors import DataError
from ..store.weights import ColumnSpec
from .dataset import name_list


def infer_kind(series) -> str:
    """numeric for numbers (not booleans), categorical for text, booleans and categoricals."""
    import pandas as pd

    t = pd.api.types
    if t.is_bool_dtype(series) or not t.is_numeric_dtype(series):
        return "categorical"
    return "numeric"


def fit_columns(frame, data: DataConfig, where: str) -> list[ColumnSpec]:
    """A ColumnSpec for each column of ``frame`` (the training rows), by ``data``'s settings."""
    unknown = [name for name in data.columns if name not in frame.columns]
    if unknown:
        raise DataError(
            f"{where}: data.columns names {unknown[0]!r}, which is not a feature column "
            f"(features: {name_list(frame.columns)})"
        )
    return [_fit(frame[name], name, data.columns.get(name), data, where) for name in frame]


def _fit(series, name: str, own: ColumnConfig | None, data: DataConfig, where: str) -> ColumnSpec:
    own = own or ColumnConfig()
    kind = own.type or infer_kind(series)
    gaps = series.isna()
    if kind == "numeric":
        values = _numbers(series, name, where)
        impute = own.impute or data.impute
        fill_value = own.fill_value if own.fill_value is not None else data.fill_value
        fill = _numeric_fill(values[~gaps.to_numpy()], impute, fill_value, name, where)
        indicator = bool(gaps.any()) and (
            own.missing_indicator if own.missing_indicator is not None else data.missing_indicator
        )
        return ColumnSpec(name=name, kind=kind, impute=impute, fill=fill, indicator=indicator)
    impute = own.impute or data.impute_categorical
    present = series[~gaps]
    counts = Counter(_plain(v) for v in present.tolist())
    cap = own.max_categories or data.max_categories
    if cap is None and len(counts) > MAX_DISTINCT:
        raise DataError(
            f"{where}: column {name!r} has {len(counts)} distinct values, more than the "
            f"{MAX_DISTINCT} a categorical column takes by default; set "
            f"data.columns.{name}.max_categories: N (the N most frequent kept, the rest one "
            "'other' column), or leave it out with data.features"
        )
    ranked = sorted(counts, key=lambda c: (-counts[c], _order(c)))
    kept = ranked if cap is None else ranked[:cap]
    other = None if cap is None or len(ranked) <= cap else sorted(ranked[cap:], key=_order)
    fill = ranked[0] if impute == "most_frequent" and ranked else None
    return ColumnSpec(
        name=name,
        kind=kind,
        impute=impute,
        fill=fill,
        categories=sorted(kept, key=_order),
        missing=impute == "category" and bool(gaps.any()),
        other=other,
    )


def _numbers(series, name: str, where: str) -> np.ndarray:
    """A numeric column's values as float64; text in it, or Inf, is an error naming it."""
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        sample = next((v for v in series.dropna().tolist() if not isinstance(v, int | float)), None)
        raise DataError(
            f"{where}: column {name!r} is numeric (data.columns) but holds {sample!r}; "
            f"make it categorical (data.columns.{name}: categorical) or fix the value"
        ) from None
    inf = np.isinf(values)
    if inf.any():
        raise DataError(
            f"{where}: column {name!r} has {int(inf.sum())} Inf cell(s); fix them (gaps, "
            "empty cells or NaN, are filled as data.impute says)"
        )
    return values


def _numeric_fill(values: np.ndarray, impute: str, fill_value, name: str, where: str):
    """The value a numeric column's gaps are filled with, from its training values."""
    if impute == "none":
        return None
    if impute == "constant":
        try:
            return float(fill_value)
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: data.columns.{name}.fill_value: a numeric column needs a number "
                f"(got {fill_value!r})"
            ) from None
    if len(values) == 0:
        raise DataError(
            f"{where}: column {name!r} has no value in the training rows to take the "
            f"{impute} of; set data.columns.{name}.impute: constant, or leave it out"
        )
    if impute == "mean":
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float(np.mean(values))
        if not np.isfinite(mean):
            raise DataError(
                f"{where}: column {name!r} has values too large to standardize (its mean "
                "overflows float64); rescale it"
            )
        return mean
    if impute == "median":
        return float(np.median(values))
    uniques, counts = np.unique(values, return_counts=True)  # most_frequent: smallest on a tie
    return float(uniques[int(np.argmax(counts))])


def _plain(v):
    """A category as a plain JSON value: NumPy scalars as Python ones, integral floats as ints
    (a year read as 2007.0 beside a gap is the category 2007)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _order(c) -> tuple:
    """Categories sorted as scikit-learn's OneHotEncoder sorts them: numbers, then text."""
    return (isinstance(c, str), c if not isinstance(c, str) else 0, str(c))


def encoded_names(columns: list[ColumnSpec]) -> list[str]:
    return [n for c in columns for n in c.encoded_names()]


def scaled(columns: list[ColumnSpec]) -> np.ndarray:
    """Which encoded columns standardization applies to: the numeric ones, not the one-hot."""
    return np.array([c.kind == "numeric" for c in columns for _ in range(c.width)], dtype=bool)


def encode(frame, columns: list[ColumnSpec], where: str) -> tuple[np.ndarray, dict[str, int]]:
    """The encoded float64 matrix (rows, sum of widths) of ``frame``'s rows, and per column the
    number of rows whose category training never saw (encoded as all zeros)."""
    n = len(frame)
    out = np.zeros((n, sum(c.width for c in columns)), dtype=np.float64)
    unseen: dict[str, int] = {}
    j = 0
    for c in columns:
        series = frame[c.name]
        if c.kind == "numeric":
            _encode_numeric(series, c, out, j, where)
        else:
            count = _encode_categorical(series, c, out, j, where)
            if count:
                unseen[c.name] = count
        j += c.width
    return out, unseen


def _encode_numeric(series, c: ColumnSpec, out: np.ndarray, j: int, where: str) -> None:
    values = _numbers(series, c.name, where)
    gaps = np.isnan(values)
    if gaps.any():
        if c.fill is None:
            raise DataError(
                f"{where}: column {c.name!r} has {int(gaps.sum())} empty or NaN cell(s) "
                f"({c.impute!r}: gaps are not filled); set data.impute (mean, median, ...), "
                "or data.dropna: true"
            )
        values = np.where(gaps, c.fill, values)
    out[:, j] = values
    if c.indicator:
        out[:, j + 1] = gaps


def _encode_categorical(series, c: ColumnSpec, out: np.ndarray, j: int, where: str) -> int:
    """One-hot columns of a categorical column; returns how many rows had an unseen category."""
    gaps = series.isna().to_numpy()
    if gaps.any() and c.impute == "none":
        raise DataError(
            f"{where}: column {c.name!r} has {int(gaps.sum())} empty cell(s) (impute: none); "
            "set data.impute_categorical (category, most_frequent), or data.dropna: true"
        )
    index = {cat: k for k, cat in enumerate(c.categories)}
    other = set(c.other or ())
    rows_other = c.width - 1 if c.other is not None else None
    unseen = 0
    for i, (v, gap) in enumerate(zip(series.tolist(), gaps, strict=True)):
        if gap:
            if c.missing:
                out[i, j + len(c.categories)] = 1.0
            elif c.fill is not None:
                out[i, j + index[c.fill]] = 1.0
            continue
        v = _plain(v)
        k = index.get(v)
        if k is not None:
            out[i, j + k] = 1.0
        elif v in other:
            out[i, j + rows_other] = 1.0
        else:
            unseen += 1
    return unseen


def describe(columns: list[ColumnSpec]) -> list[dict]:
    """One row per raw column for ``validate``: type, how gaps are filled, encoding, width."""
    rows = []
    for c in columns:
        if c.kind == "numeric":
            gaps = "refused" if c.fill is None else f"{c.impute} ({c.fill:.4g})"
            encoding = "value" + (" + missing indicator" if c.indicator else "")
        else:
            gaps = {"category": "own category", "none": "refused"}.get(c.impute, f"{c.impute}")
            if c.impute == "most_frequent" and c.fill is not None:
                gaps = f"most frequent ({c.fill})"
            encoding = f"one-hot, {len(c.categories)} categories"
            encoding += " + (missing)" if c.missing else ""
            encoding += f" + (other: {len(c.other)})" if c.other is not None else ""
        rows.append(
            {"column": c.name, "type": c.kind, "gaps": gaps, "encoding": encoding, "width": c.width}
        )
    return rows
