"""Fixed splits from their own files (data.validation_path, data.test_path): read with the
training file's feature and target columns and appended after its rows, so that the splits
stay row indices into one dataset and every fitted step (imputation, encoding, scaling,
target scaling, the classes) sees the training file's rows alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config.models import DataConfig
from ..errors import DataError
from .dataset import Dataset
from .files import file_digest, load_file
from .idx import is_idx

# split -> the data key of its file
SPLIT_FILES = {"val": "validation_path", "test": "test_path"}


def load_split_file(
    data: DataConfig, split: str, features: list[str], path: str | Path | None = None
) -> Dataset:
    """The rows of a split's own file (``path``, else the config's): the training file's
    feature columns (by name; others ignored) and target; every problem one DataError line
    naming the key and the file."""
    key = SPLIT_FILES[split]
    path = Path(path or getattr(data, key)).expanduser()
    by_position = path.suffix.lower() == ".npz" or is_idx(path)  # no column names: X, pixels
    try:
        if by_position:
            ds = load_file(path)
        else:
            ds = load_file(
                path, data.target, features, data.dropna, sep=data.sep, weight=data.sample_weight
            )
    except DataError as e:
        raise DataError(f"data.{key}: {e}") from None
    if by_position:
        if ds.features.shape[1] != len(features):
            raise DataError(
                f"data.{key}: {path}: {ds.features.shape[1]} feature columns, the training "
                f"file {len(features)}"
            )
        ds.features = ds.features.set_axis(features, axis=1)
    return ds


def with_split_files(ds: Dataset, data: DataConfig) -> Dataset:
    """``ds`` (the training file's rows) followed by the rows of the split files the config
    names; ``given`` holds each such split's row indices, ``source`` each file's path and sha256."""
    parts = {
        s: load_split_file(data, s, ds.feature_names)
        for s, key in SPLIT_FILES.items()
        if getattr(data, key) is not None
    }
    if not parts:
        return ds
    import pandas as pd

    frames, targets, weights = [ds.features], [ds.targets], [ds.weights]
    given, start = {}, len(ds)
    for split, part in parts.items():
        if part.targets.ndim != ds.targets.ndim:
            raise DataError(
                f"data.{SPLIT_FILES[split]}: {part.source['path']}: its target has shape "
                f"{part.targets.shape[1:]}, the training file's {ds.targets.shape[1:]}"
            )
        frames.append(part.features)
        targets.append(part.targets)
        weights.append(part.weights)
        given[split] = np.arange(start, start + len(part), dtype=np.int64)
        start += len(part)
    return Dataset(
        pd.concat(frames, ignore_index=True),
        np.concatenate(targets),
        ds.target_names,
        {**ds.source, **{SPLIT_FILES[s]: _where(p) for s, p in parts.items()}},
        None if ds.weights is None else np.concatenate(weights),
        given=given,
        own_rows=len(ds),
    )


def _where(part: Dataset) -> dict:
    return {"path": part.source["path"], "sha256": part.source["sha256"]}


def split_file_digest_error(path: Path, recorded: dict | None) -> str | None:
    """Why a split file cannot stand for the one a model was trained with, or None."""
    if not path.is_file():
        return f"{path}: the split file is not there any more; pass --data FILE"
    if recorded and recorded.get("sha256") and file_digest(path) != recorded["sha256"]:
        return f"{path}: the file changed since training (sha256 differs); pass --data FILE"
    return None
