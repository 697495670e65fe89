"""Data files: CSV/TSV and Parquet tables (a target column, optional feature columns) and
NPZ archives holding X and y, checked column by column; nothing is unpickled."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..store.npz import NpzReader, npz_errors
from .dataset import Dataset, checked_weights, name_list, numeric_dataset
from .idx import is_idx, labels_path, load_idx

FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonl", ".npz")
SEPARATORS = (",", "\t", ";", "|")  # what a .csv/.txt header line is sniffed for


def sniff_sep(path: Path) -> str:
    """The delimiter of a text table, from its header line: the most frequent of , TAB ; |
    outside quotes (a .tsv is tab-separated; no delimiter at all: a comma)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with open(path, "rb") as f:
            line = f.readline(1 << 20).decode("utf-8", "replace")
    except OSError:
        return ","
    unquoted = "".join(part for i, part in enumerate(line.split('"')) if i % 2 == 0)
    counts = {sep: unquoted.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_frame(path: Path, header: bool = True, rows: int | None = None, sep: str | None = None):
    """The file as a DataFrame (``rows``: only that many data rows); one DataError line when
    it cannot be read. ``header`` False: the first row is data, the columns are 0, 1, ...
    ``sep`` None: sniffed from the header line (``sniff_sep``). JSON: an array of records, or
    JSON Lines (.jsonl), one record a line."""
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
        if suffix in (".json", ".jsonl"):
            frame = pd.read_json(path, lines=suffix == ".jsonl", orient="records")
            return frame.head(rows) if rows is not None else frame
        sep = sep or sniff_sep(path)
        return pd.read_csv(path, sep=sep, header=0 if header else None, nrows=rows)
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
    if path.suffix.lower() not in FILE_SUFFIXES and not is_idx(path):
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; expected .csv, .tsv, "
            ".txt, .parquet, .json, .jsonl, .npz or IDX images (train-images-idx3-ubyte[.gz])"
        )


def load_table(
    path: Path,
    target: str | list[str] | None,
    features: list[str] | None,
    dropna: bool = False,
    need_target: bool = True,
    header: bool = True,
    sep: str | None = None,
    weight: str | None = None,
) -> Dataset:
    """Features and target columns of a CSV/TSV/Parquet/JSON file, checked column by column;
    ``weight``: the column of the rows' weights (data.sample_weight), not a feature.
    ``header`` False: a CSV whose first row is data; its columns are named 0, 1, ..."""
    _check_path(path)
    frame = _read_frame(path, header, sep=sep)
    if frame.shape[0] == 0:
        raise DataError(
            f"{path}: no data rows (only a header with columns {', '.join(map(str, frame.columns))})"
        )
    frame.columns = [str(c) for c in frame.columns]
    if frame.shape[1] == 1:
        _one_column(path, frame.columns[0])
    columns = list(frame.columns)
    if weight is not None and weight not in columns:
        raise DataError(
            f"{path}: no column {weight!r} (data.sample_weight); the columns are {name_list(columns)}"
        )
    others = [c for c in columns if c != weight]
    feats, targets = _columns(path, others, target, features, need_target)
    keep = feats + targets + ([weight] if weight else [])
    if columns != keep:  # each selection costs a pass over the columns
        frame = frame[keep]
    if dropna:
        frame = frame.replace([np.inf, -np.inf], np.nan).dropna()
        if frame.shape[0] == 0:
            raise DataError(f"{path}: no rows left after data.dropna removed rows with empty cells")
        frame = frame.reset_index(drop=True)
    if targets:
        t = frame[targets]
        if t.isna().to_numpy().any():
            col = targets[int(np.argmax(t.isna().to_numpy().any(axis=0)))]
            raise DataError(
                f"{path}: target column {col!r} has {int(t[col].isna().sum())} empty cell(s); "
                "fix them or set data.dropna: true"
            )
        targets_arr = t.to_numpy() if len(targets) > 1 else t.iloc[:, 0].to_numpy()
    else:
        targets_arr = np.empty((len(frame), 0))
    weights = _weights(path, frame[weight], weight) if weight else None
    return Dataset(frame[feats], targets_arr, targets, {}, weights)


def _weights(path: Path, column, name: str) -> np.ndarray:
    """The rows' weights of a column: numbers (see ``checked_weights``)."""
    try:
        w = column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(f"{path}: column {name!r} (data.sample_weight) holds text") from None
    return checked_weights(w, f"{path}: column {name!r} (data.sample_weight)")


def _one_column(path: Path, name: str) -> None:
    """A table read as one column whose name holds another delimiter was split wrong."""
    for sep, said in (("\t", "tabs"), (";", "semicolons"), ("|", "'|'")):
        if sep in name:
            shown = "'\\t'" if sep == "\t" else repr(sep)
            raise DataError(
                f"{path}: read as one column, whose name holds {said}; the file looks "
                f"{said}-separated: set data.sep: {shown}"
            )


def _columns(
    path: Path, columns: list[str], target, features, need_target: bool
) -> tuple[list[str], list[str]]:
    """(feature columns, target columns present) as data.features and data.target name them."""
    targets = [target] if isinstance(target, str) else list(target or [])
    if need_target:
        if not targets:
            raise DataError(
                f"{path}: data.target is required for a table: name the target column (columns: {name_list(columns)})"
            )
        missing = [t for t in targets if t not in columns]
        if missing:
            raise DataError(
                f"{path}: no target column {missing[0]!r}; the columns are {name_list(columns)}"
            )
    feats = list(features) if features else [c for c in columns if c not in targets]
    seen: set[str] = set()  # sets, not list scans: a file may have 100,000 columns
    for f in feats:
        if f in targets:
            raise DataError(
                f"{path}: column {f!r} is the target; it cannot be a feature too (data.features)"
            )
        if f in seen:
            raise DataError(f"{path}: data.features lists column {f!r} twice")
        seen.add(f)
    present = set(columns)
    missing = [f for f in feats if f not in present]
    if missing:
        raise DataError(
            f"{path}: no feature column {missing[0]!r}; the columns are {name_list(columns)}"
        )
    if not feats:
        raise DataError(f"{path}: no feature columns besides the target")
    return feats, [t for t in targets if t in present]


def load_npz(path: Path) -> Dataset:
    """Arrays X (n, n_features) and y (n,) or (n, k) from an .npz file; nothing is unpickled."""
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
    return numeric_dataset(X, y, ["y"])


def table_columns(path: str | Path) -> list[str]:
    """The column names of a table file (its header), read without its rows where it can."""
    p = Path(path).expanduser()
    _check_path(p)
    rows = None if p.suffix.lower() in (".parquet", ".pq", ".json") else 0
    return [str(c) for c in _read_frame(p, rows=rows).columns]


def read_columns(path: str | Path, names: list[str]):
    """The columns ``names`` of a table file as they are (predict --keep copies them)."""
    p = Path(path).expanduser()
    _check_path(p)
    frame = _read_frame(p)
    frame.columns = [str(c) for c in frame.columns]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{p}: no column {missing[0]!r} to keep; the columns are {name_list(frame.columns)}"
        )
    return frame[names]


def load_file(
    path: str | Path,
    target=None,
    features=None,
    dropna: bool = False,
    need_target: bool = True,
    header: bool = True,
    sep: str | None = None,
    weight: str | None = None,
) -> Dataset:
    """A data file by its extension (an IDX images file by its name); its source records the
    absolute path and its sha256 (an IDX file's, its labels file's too)."""
    p = Path(path).expanduser()
    if weight is not None and (p.suffix.lower() == ".npz" or is_idx(p)):
        raise DataError(f"{p}: data.sample_weight names a column; an .npz or IDX file has none")
    if is_idx(p):
        return _idx_file(p, target, features, need_target)
    ds = (
        load_npz(p)
        if p.suffix.lower() == ".npz"
        else load_table(p, target, features, dropna, need_target, header, sep, weight)
    )
    ds.source = {
        "path": str(p.resolve()),
        "sha256": file_digest(p),
        "target": target,
        "features": ds.feature_names,
    }
    return ds


def _idx_file(p: Path, target, features, need_target: bool) -> Dataset:
    """An IDX images file and (``need_target``) its labels file."""
    for key, value in (("data.target", target), ("data.features", features)):
        if value is not None:
            raise DataError(
                f"{p}: {key} names columns; an IDX images file's features are its pixels and "
                f"its target the labels file beside it; remove {key}"
            )
    _check_path(p)
    ds = load_idx(p, need_labels=need_target)
    ds.source = {"path": str(p.resolve()), "sha256": file_digest(p), "target": None}
    if need_target:
        lp = labels_path(p)
        ds.source["labels"] = {"path": str(lp.resolve()), "sha256": file_digest(lp)}
    ds.source["features"] = ds.feature_names
    return ds
