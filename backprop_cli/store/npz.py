"""NPZ archives read member by member, without numpy.load: names and .npy headers first,
array data only when asked for and only as many bytes as the header promised. Nothing is
ever unpickled. Weights, checkpoints and .npz data files are read through ``NpzReader``."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import stat
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..config.models import MAX_LAYERS
from ..errors import BackpropError, WeightsError

MAX_MEMBERS = 2 * MAX_LAYERS + 16  # W_i, b_i, x_mean, x_scale, spec; checkpoints need fewer
MAX_NPY_HEADER = 10_000  # numpy.load's max_header_size
MAX_JSON_CHARS = 10_000_000  # the spec, or a checkpoint's state
_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\.npy")
_CHUNK = 1 << 20


class NpzReader:
    """An .npz read member by member without numpy.load: the member names and every .npy header
    first (a few hundred bytes each), array data only when asked for and only as many bytes as
    its header promised, read as they arrive, so a header's claim allocates nothing by itself.
    Nothing is ever unpickled: an object dtype is refused from the header."""

    def __init__(self, path: Path, what: str, error: type[BackpropError] = WeightsError):
        self.path, self.what, self.error = path, what, error
        self.zf = zipfile.ZipFile(path)
        try:
            self.infos: dict[str, zipfile.ZipInfo] = {}
            infos = self.zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise self.error(
                    f"{path}: the archive has {len(infos)} members; a {what} has at most {MAX_MEMBERS}"
                )
            for info in infos:
                if not _MEMBER_NAME.fullmatch(info.filename):
                    raise self.error(
                        f"{path}: unexpected member {info.filename[:80]!r} in the archive; "
                        "expected only NAME.npy arrays"
                    )
                name = info.filename[:-4]
                if name in self.infos:
                    raise self.error(f"{path}: the archive holds {info.filename!r} twice")
                if info.flag_bits & 0x1:
                    raise self.error(f"{path}: {info.filename} is encrypted")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise self.error(
                        f"{path}: {info.filename} uses zip compression method {info.compress_type}; "
                        "expected stored or deflated (numpy.savez or savez_compressed)"
                    )
                self.infos[name] = info
            self.headers = {name: self._header(info) for name, info in self.infos.items()}
        except BaseException:
            self.zf.close()
            raise

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def _header(self, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        """(shape, fortran_order, dtype, data offset) from the member's .npy header alone."""
        where = f"{self.path}: {info.filename}"
        with self.zf.open(info) as f:
            magic = f.read(8)
            if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
                raise self.error(f"{where}: not a .npy array")
            version = (magic[6], magic[7])
            if version not in ((1, 0), (2, 0)):
                raise self.error(f"{where}: unsupported .npy format version {version}")
            size_format = "<H" if version == (1, 0) else "<I"
            length = f.read(struct.calcsize(size_format))
            if len(length) < struct.calcsize(size_format):
                raise self.error(f"{where}: the .npy header is truncated")
            (n,) = struct.unpack(size_format, length)
            if n > MAX_NPY_HEADER:  # numpy's own limit, checked before reading it, not after
                raise self.error(f"{where}: a .npy header of {n} bytes; at most {MAX_NPY_HEADER}")
            text = f.read(n)
            if len(text) < n:
                raise self.error(f"{where}: the .npy header is truncated")
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(io.BytesIO(length + text), max_header_size=MAX_NPY_HEADER)
        return tuple(shape), bool(fortran), np.dtype(dtype), 8 + len(length) + n

    def shape(self, name: str) -> tuple[int, ...]:
        return self.headers[name][0]

    def dtype(self, name: str) -> np.dtype:
        return self.headers[name][2]

    def read(self, name: str) -> np.ndarray:
        """The array ``name``: exactly the bytes its (already checked) header promised, CRC-checked."""
        shape, fortran, dtype, offset = self.headers[name]
        info = self.infos[name]
        if dtype.hasobject or dtype.itemsize == 0:
            raise self.error(
                f"{self.path}: {name} has dtype {dtype}; object arrays are refused (never unpickled)"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        with self.zf.open(info) as f:
            f.read(offset)
            buf = bytearray()
            while len(buf) < nbytes:
                chunk = f.read(min(_CHUNK, nbytes - len(buf)))
                if not chunk:
                    raise self.error(
                        f"{self.path}: {name} is truncated ({len(buf)} of {nbytes} bytes of data)"
                    )
                buf += chunk
            if f.read(1):  # also where zipfile checks the member's CRC-32
                raise self.error(f"{self.path}: {name} holds more data than its header says")
        return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")


@contextlib.contextmanager
def npz_errors(path: Path, what: str, error: type[BackpropError] = WeightsError):
    """Any failure to parse the archive becomes one ``error`` line naming the file."""
    try:
        yield
    except BackpropError:
        raise
    except MemoryError:
        raise error(f"{path}: not enough memory to read this {what}") from None
    except OSError as e:  # not BadZipFile, which is no OSError: permissions, I/O errors
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    except Exception as e:  # BadZipFile, zlib.error, EOFError, struct.error, ValueError, ...
        detail = " ".join(str(e).split())[:200]
        raise error(f"{path}: not a readable {what} ({type(e).__name__}: {detail})") from None


def require_file(path: Path, what: str) -> None:
    """A file that exists and is not a directory, or one WeightsError line."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise WeightsError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"{path}: cannot open the {what} ({getattr(e, 'strerror', None) or e})"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise WeightsError(f"{path}: is a directory, expected a {what} (.npz)")
    if not stat.S_ISREG(st.st_mode):
        raise WeightsError(f"{path}: not a regular file, expected a {what} (.npz)")


def read_json_member(path: Path, ar: NpzReader, name: str, what: str) -> Any:
    """The JSON document held as a 0-d unicode array ``name`` (how numpy stores a string)."""
    shape, dtype = ar.shape(name), ar.dtype(name)
    if shape != () or dtype.kind != "U" or not 0 < dtype.itemsize <= 4 * MAX_JSON_CHARS:
        raise WeightsError(
            f"{path}: the {name!r} entry must be one JSON string (got shape {shape}, dtype {dtype})"
        )
    text = str(ar.read(name)[()])
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        if isinstance(e, json.JSONDecodeError):
            why = f"{e.msg} at char {e.pos}"
        elif isinstance(e, RecursionError):
            why = "nested too deeply"
        else:
            why = f"a number of more than {sys.get_int_max_str_digits()} digits"
        raise WeightsError(f"{path}: the {what} is not valid JSON ({why})") from None
