"""The run directory and its files: weights, checkpoint, metrics.csv, summary.json, config.yaml.

Every file is written atomically (a temporary file in the same directory, fsync, rename),
so a crash at any moment leaves the previous version whole. A run directory is never
reused: when the configured one already holds files, the run goes to DIR-2, DIR-3, ...

Weights files are loaded with ``allow_pickle=False`` and validated against their spec
from the .npy headers before any array data is read.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .config.models import MAX_LAYERS, MAX_PARAMETERS
from .errors import BackpropError, OutputError, WeightsError

FORMAT = "backprop-weights"
FORMAT_VERSION = 1
RUN_FILES = ("config.yaml", "weights.npz", "checkpoint.npz", "metrics.csv", "summary.json")
FLOAT_DTYPES = ("float32", "float64")
# Bounds on what a weights file may claim, checked before anything is allocated: a network
# of at most MAX_LAYERS layers and MAX_PARAMETERS parameters (the config has the same bounds).
MAX_MEMBERS = 2 * MAX_LAYERS + 16  # W_i, b_i, x_mean, x_scale, spec; checkpoints need fewer
MAX_NPY_HEADER = 10_000  # numpy.load's max_header_size
MAX_JSON_CHARS = 10_000_000  # the spec, or a checkpoint's state (its metrics rows)
_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\.npy")
_SCHEDULE_STATE = {"scale", "best", "num_bad_epochs", "cooldown_counter", "plateau_lr"}
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------- writing


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(f)`` into a temporary file, fsync, then rename over it."""
    path = Path(path)
    try:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    except ValueError:
        raise OutputError(f"{path}: not written (not a file name)") from None
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as e:  # a full disk, no permission, a NUL byte in the name, ...
        _remove(tmp)
        reason = getattr(e, "strerror", None) or str(e)
        raise OutputError(
            f"{path}: not written ({reason}); the earlier version, if any, is untouched"
        ) from None
    except BaseException:
        _remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def new_run_dir(base: str | Path) -> Path:
    """Create and return a fresh run directory: ``base`` if it is new or empty, else base-2, base-3, ..."""
    base = Path(base)
    try:
        if not base.name:  # ".", "..": number the directory by its real name
            base = base.resolve()
        if base.exists() and not base.is_dir():
            raise OutputError(
                f"{base}: is a file, not a run directory; choose another output.dir or --out"
            )
        for i in range(1, 10_000):
            cand = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                cand.mkdir(parents=True, exist_ok=False)
                return cand
            except FileExistsError:
                if cand.is_dir() and not any(cand.iterdir()):
                    return cand
    except OutputError:
        raise
    except (OSError, ValueError) as e:  # a file in the way, no permission, a NUL byte, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise OutputError(f"{base}: cannot create the run directory ({reason})") from None
    raise OutputError(f"{base}: too many runs with this name; choose another output.dir or --out")


def json_safe(obj):
    """NaN and Inf become None, in nested dicts and lists, so the JSON is valid everywhere (jq included)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ---------------------------------------------------------------------------- weights


def weights_arrays(net, spec: dict, mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name, t in zip(net.tensor_names(), net.tensors(), strict=True):
        arrays[name] = np.array(t)
    arrays["x_mean"] = np.asarray(mean, dtype=np.float64)
    arrays["x_scale"] = np.asarray(scale, dtype=np.float64)
    arrays["spec"] = np.array(json.dumps(spec, default=_json_default))
    return arrays


def save_weights(path: Path, net, spec: dict, mean, scale) -> None:
    write_npz(path, weights_arrays(net, spec, mean, scale))


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


def _check_file(path: Path, what: str) -> None:
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


def load_weights(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(spec, arrays) of a weights file, validated; every problem is one WeightsError line.

    The spec is read and checked first; then every array's shape and dtype from its .npy
    header against the spec; only then is any array data read."""
    path = Path(path)
    _check_file(path, "weights file")
    with npz_errors(path, "weights file"), NpzReader(path, "weights file") as ar:
        spec = _read_spec(path, ar)
        expected = expected_shapes(spec)
        for name, shape in expected.items():
            if name not in ar.headers:
                raise WeightsError(f"{path}: array {name!r} is missing")
            if ar.shape(name) != shape:
                raise WeightsError(
                    f"{path}: {name} has shape {ar.shape(name)}, the spec says {shape}"
                )
            if ar.dtype(name).name not in FLOAT_DTYPES:
                raise WeightsError(
                    f"{path}: {name} has dtype {ar.dtype(name)}, expected float32 or float64"
                )
        arrays = {name: ar.read(name) for name in expected}
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise WeightsError(f"{path}: {name} holds NaN or Inf values")
    if (arrays["x_scale"] <= 0).any():
        raise WeightsError(f"{path}: x_scale must be positive (it divides the features)")
    return spec, arrays


def _read_json(path: Path, ar: NpzReader, name: str, what: str) -> Any:
    """The JSON document held as a 0-d unicode array ``name`` (how numpy stores a string)."""
    shape, dtype = ar.shape(name), ar.dtype(name)
    if shape != () or dtype.kind != "U" or not 0 < dtype.itemsize <= 4 * MAX_JSON_CHARS:
        raise WeightsError(
            f"{path}: the {name!r} entry must be one JSON string (got shape {shape}, dtype {dtype})"
        )
    text = str(ar.read(name)[()])
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        why = (
            f"{e.msg} at char {e.pos}"
            if isinstance(e, json.JSONDecodeError)
            else "nested too deeply"
        )
        raise WeightsError(f"{path}: the {what} is not valid JSON ({why})") from None


def _read_spec(path: Path, ar: NpzReader) -> dict:
    if "spec" not in ar.headers:
        raise WeightsError(f"{path}: no 'spec' entry; not a backprop weights file")
    spec = _read_json(path, ar, "spec", "spec")
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise WeightsError(f"{path}: the spec is not a {FORMAT} spec")
    version = spec.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise WeightsError(f"{path}: the spec's format version is {version!r}; expected an integer")
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: format version {version!r} is newer than this backprop reads ({FORMAT_VERSION}); upgrade backprop"
        )
    check_spec(spec, str(path))
    return spec


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def check_spec(spec: dict, where: str) -> None:
    """Every spec field that loading, eval and predict use, checked before any of them runs."""
    from .nn.activations import ACTIVATIONS
    from .nn.losses import CLASSIFICATION_LOSSES, LOSSES

    def bad(key: str, expected: str) -> WeightsError:
        got = json.dumps(spec.get(key), default=str)
        got = got if len(got) <= 60 else got[:57] + "..."
        return WeightsError(f"{where}: spec {key}: expected {expected} (got {got})")

    sizes = spec.get("sizes")
    if (
        not isinstance(sizes, list)
        or not 2 <= len(sizes) <= MAX_LAYERS + 1
        or not all(_int(s) and 0 < s <= 10**6 for s in sizes)
    ):
        raise bad("sizes", f"a list of 2 to {MAX_LAYERS + 1} layer widths from 1 to 1000000")
    n_params = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    if n_params > MAX_PARAMETERS:
        raise WeightsError(
            f"{where}: the spec's sizes {sizes[:8]}{'...' if len(sizes) > 8 else ''} need "
            f"{n_params:,} parameters, more than the {MAX_PARAMETERS:,} this tool handles"
        )
    acts = spec.get("activations")
    if not _str_list(acts) or len(acts) != len(sizes) - 1:
        raise bad("activations", f"a list of {len(sizes) - 1} activation names")
    for a in acts:
        if a not in ACTIVATIONS:
            raise WeightsError(f"{where}: the spec names unknown activation {a!r}")
    residual = spec.get("residual", [False] * len(acts))
    if (
        not isinstance(residual, list)
        or len(residual) != len(acts)
        or not all(isinstance(r, bool) for r in residual)
    ):
        raise bad("residual", f"a list of {len(acts)} true/false")
    for i, r in enumerate(residual):
        if r and (sizes[i] != sizes[i + 1] or i == len(acts) - 1):
            raise WeightsError(
                f"{where}: the spec marks layer {i} residual, but its widths do not allow it"
            )
    if spec.get("dtype") not in FLOAT_DTYPES:
        raise WeightsError(
            f"{where}: the spec's dtype must be float32 or float64 (got {spec.get('dtype')!r})"
        )
    loss = spec.get("loss")
    if loss not in LOSSES:
        raise bad("loss", "one of " + ", ".join(LOSSES))
    task = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
    if spec.get("task", "classification") != task:
        raise bad("task", f"{task!r} for loss {loss}")
    classes = spec.get("classes")
    if task == "classification":
        want = 2 if loss == "binary_cross_entropy" else sizes[-1]
        if (
            not isinstance(classes, list)
            or len(classes) != want
            or not all(isinstance(c, str) or _number(c) for c in classes)
        ):
            raise bad("classes", f"a list of {want} class labels (the output layer's)")
        if loss == "binary_cross_entropy" and sizes[-1] != 1:
            raise bad("sizes", "1 output unit for binary_cross_entropy")
    for key in ("feature_names", "target_names"):
        if key in spec and not _str_list(spec[key]):
            raise bad(key, "a list of column names")
    if "feature_names" in spec and len(spec["feature_names"]) != sizes[0]:
        raise bad("feature_names", f"{sizes[0]} names, one per input")
    seed = spec.get("seed", 0)
    if not _int(seed) or seed < 0:
        raise bad("seed", "an integer >= 0")
    data = spec.get("data", {})
    if not isinstance(data, dict):
        raise bad("data", "a mapping")
    _check_spec_data(data, where)


def _check_spec_data(d: dict, where: str) -> None:
    def bad(key: str, expected: str) -> WeightsError:
        got = json.dumps(d.get(key), default=str)
        got = got if len(got) <= 60 else got[:57] + "..."
        return WeightsError(f"{where}: spec data.{key}: expected {expected} (got {got})")

    for key in ("dataset", "path"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise bad(key, "a string")
    for key in ("validation", "test"):
        if key in d and not (_number(d[key]) and 0 <= d[key] < 1):
            raise bad(key, "a fraction in [0, 1)")
    if d.get("validation", 0) + d.get("test", 0) >= 1:
        raise bad("test", "validation + test < 1")
    for key in ("standardize", "dropna"):
        if key in d and not isinstance(d[key], bool):
            raise bad(key, "true or false")
    if d.get("n_samples") is not None and not (
        _int(d["n_samples"]) and 0 < d["n_samples"] <= 10**7
    ):
        raise bad("n_samples", "an integer from 1 to 10000000")
    if d.get("noise") is not None and not (_number(d["noise"]) and d["noise"] >= 0):
        raise bad("noise", "a number >= 0")
    target = d.get("target")
    if target is not None and not (isinstance(target, str) or _str_list(target)):
        raise bad("target", "a column name or a list of them")
    if d.get("features") is not None and not _str_list(d["features"]):
        raise bad("features", "a list of column names")
    source = d.get("source", {})
    if not isinstance(source, dict) or any(
        source.get(k) is not None and not isinstance(source[k], str) for k in ("path", "sha256")
    ):
        raise bad("source", "a mapping with path and sha256 strings")


def expected_shapes(spec: dict) -> dict[str, tuple[int, ...]]:
    sizes = spec["sizes"]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        shapes[f"W{i}"] = (fan_in, fan_out)
        shapes[f"b{i}"] = (fan_out,)
    shapes["x_mean"] = (sizes[0],)
    shapes["x_scale"] = (sizes[0],)
    return shapes


def network_from_weights(spec: dict, arrays: dict[str, np.ndarray]):
    """A Network with the stored parameters, in the spec's dtype."""
    from .nn.network import Network

    residual = spec.get("residual") or [False] * (len(spec["sizes"]) - 1)
    net = Network(spec["sizes"], spec["activations"], dtype=spec["dtype"], residual=residual)
    for name, t in zip(net.tensor_names(), net.tensors(), strict=True):
        t[...] = arrays[name]
    return net


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], state: dict) -> None:
    """The training state: flat arrays plus one JSON string (epoch, RNG states, schedule, rows)."""
    write_npz(path, {**arrays, "state": np.array(json.dumps(state, default=_json_default))})


def load_checkpoint(path: Path, net, opt, need_best: bool) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, state) of a checkpoint, each array checked against the network and optimizer
    from its .npy header before any data is read, then the state's structure."""
    path = Path(path)
    expected = {"params": net.params.shape, **{f"opt_{k}": v.shape for k, v in opt.state.items()}}
    if need_best:
        expected["best_params"] = net.params.shape
    _check_file(path, "checkpoint")
    with npz_errors(path, "checkpoint"), NpzReader(path, "checkpoint") as ar:
        for name, shape in expected.items():
            if name not in ar.headers:
                raise WeightsError(
                    f"{path}: array {name!r} is missing; the checkpoint is not from this config"
                )
            got, dtype = ar.shape(name), ar.dtype(name)
            if got != shape or dtype != net.dtype:
                raise WeightsError(
                    f"{path}: {name} has shape {got} {dtype}, this config needs {shape} {net.dtype}"
                )
        if "state" not in ar.headers:
            raise WeightsError(f"{path}: no training state; not a backprop checkpoint")
        state = _read_json(path, ar, "state", "training state")
        arrays = {name: ar.read(name) for name in expected}
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise WeightsError(f"{path}: {name} holds NaN or Inf values")
    _check_state(state, path)
    return arrays, state


def _check_state(state, path: Path) -> None:
    """The training state's fields, as Trainer.load_state_dict and the summary use them."""

    def bad(key: str, expected: str) -> WeightsError:
        return WeightsError(
            f"{path}: training state {key}: expected {expected}; the checkpoint is damaged"
        )

    if not isinstance(state, dict):
        raise WeightsError(
            f"{path}: the training state is not a mapping; the checkpoint is damaged"
        )
    for key in ("epoch", "opt_t", "rollbacks"):
        if not _int(state.get(key)) or state[key] < 0:
            raise bad(key, "an integer >= 0")
    if not _number(state.get("lr")) or state["lr"] < 0:
        raise bad("lr", "a number >= 0")
    if not isinstance(state.get("stopped_early"), bool):
        raise bad("stopped_early", "true or false")
    if not _str_list(state.get("warned")):
        raise bad("warned", "a list of strings")
    sched = state.get("schedule")
    if (
        not isinstance(sched, dict)
        or not set(sched) <= _SCHEDULE_STATE
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in sched.values())
    ):
        raise bad("schedule", "numbers " + ", ".join(sorted(_SCHEDULE_STATE)))
    early = state.get("early")
    if early is not None and not (
        isinstance(early, dict)
        and isinstance(early.get("best"), int | float)
        and _int(early.get("best_epoch"))
        and _int(early.get("wait"))
    ):
        raise bad("early", "best, best_epoch and wait")
    from .data import streams

    rngs = state.get("rngs")
    names = sorted(streams(0))
    if not isinstance(rngs, dict) or sorted(rngs) != names:
        raise bad("rngs", "the generator states of " + ", ".join(names))
    for name, rng_state in rngs.items():
        try:
            np.random.PCG64().state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError):
            raise bad(f"rngs.{name}", "a PCG64 generator state") from None
    warnings = state.get("warnings", {})  # epoch -> that epoch's warnings
    if not isinstance(warnings, dict) or not all(_str_list(w) for w in warnings.values()):
        raise bad("warnings", "a mapping of epoch to a list of strings")
    rows = state.get("rows", [])  # written by earlier versions
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and all(isinstance(r.get(k), int | float) for k in ("epoch", "train_loss", "val_loss"))
        for r in rows
    ):
        raise bad("rows", "one mapping per epoch with epoch, train_loss and val_loss")
