"""The IDX format of MNIST, Fashion-MNIST and EMNIST (gzip-compressed or not, told by the
file's first bytes): an images file whose rows become pixels, and its labels file.

An IDX file is a magic number, 0x00 0x00, a type code (0x08 unsigned byte, 0x09 signed byte,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of dimensions d, then d
big-endian uint32 sizes, then the values, big-endian, row-major. An images file (d >= 2)
gives one row per image of its pixels flattened row by row; unsigned bytes are divided by 255
(pixels 0..255 -> 0..1), other types stay as they are. Its labels (d = 1, integers) come from
the file of the same name with ``images`` -> ``labels`` and ``idx3`` (any idxN) -> ``idx1``
(``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``), as the published
datasets name them.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset, numeric_dataset

PIXEL_SCALE = 1.0 / 255.0  # an unsigned-byte images file's values, 0..255, times this
TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_BYTES = 4 << 30  # what an IDX file may hold, decompressed


def is_idx(path: Path) -> bool:
    """Whether a file's name says IDX: ``...idx3...``, ``...-ubyte`` (a .gz after either)."""
    name = path.name.lower().removesuffix(".gz")
    return bool(re.search(r"idx\d", name)) or name.endswith("ubyte")


def labels_path(images: Path) -> Path:
    """The labels file of an images file, by the published datasets' naming."""
    name = images.name
    if "images" not in name:
        raise DataError(
            f"{images}: cannot tell its labels file: an IDX images file's name holds 'images', "
            "and its labels file's 'labels' (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)"
        )
    return images.with_name(re.sub(r"idx\d", "idx1", name.replace("images", "labels")))


def _raw(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with gzip's magic number (at most MAX_BYTES)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as z:
                data = z.read(MAX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: a damaged gzip stream ({e})") from None
    if len(data) > MAX_BYTES:
        raise DataError(f"{path}: more than {MAX_BYTES >> 30} GiB of IDX data")
    return data


def read_idx(path: Path) -> np.ndarray:
    """The array an IDX file holds, native byte order; one DataError line when the magic
    number, the type or the size is not right."""
    data = _raw(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in TYPES or data[3] == 0:
        raise DataError(
            f"{path}: not an IDX file: magic number {data[:4].hex() or '(empty)'}, expected "
            "0000, a type code (08, 09, 0b, 0c, 0d or 0e) and the number of dimensions"
        )
    dtype, ndim = TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: the header of {ndim} dimension(s) is cut short")
    dims = [int(d) for d in np.frombuffer(data, ">u4", ndim, 4)]
    count = int(np.prod(dims, dtype=object))
    want = header + count * dtype.itemsize
    if len(data) != want:
        what = "truncated" if len(data) < want else "longer than its header says"
        raise DataError(
            f"{path}: {what}: dimensions {' x '.join(map(str, dims))} of {dtype.itemsize}-byte "
            f"values need {want:,} bytes, the file has {len(data):,}"
        )
    return np.frombuffer(data, dtype, count, header).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(path: Path, need_labels: bool = True) -> Dataset:
    """An IDX images file as a Dataset: one row of pixels per image (features x0, x1, ...),
    unsigned bytes scaled by PIXEL_SCALE; its labels file's labels as the target (not read
    when ``need_labels`` is False: predict)."""
    images = read_idx(path)
    if images.ndim < 2:
        raise DataError(
            f"{path}: an IDX file of {images.ndim} dimension holds labels; give the images "
            "file (its labels are found beside it)"
        )
    X = images.reshape(len(images), -1)
    X = X * PIXEL_SCALE if images.dtype == np.uint8 else X.astype(np.float64)
    if not np.isfinite(X).all():
        raise DataError(f"{path}: the images hold NaN or Inf values")
    if not need_labels:
        return numeric_dataset(X, np.empty((len(X), 0)), [])
    lpath = labels_path(path)
    if not lpath.is_file():
        raise DataError(f"{path}: no labels file {lpath.name} beside it (its labels, by name)")
    labels = read_idx(lpath)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{lpath}: expected one integer label per image (1 dimension), got "
            f"{labels.ndim} dimension(s) of {labels.dtype}"
        )
    if len(labels) != len(X):
        raise DataError(f"{lpath}: {len(labels):,} labels for the {len(X):,} images of {path}")
    return numeric_dataset(X, labels.astype(np.int64), ["label"])
