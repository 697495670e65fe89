"""The run directory and its files: weights, checkpoint, metrics.csv, summary.json, config.yaml.

Every file is written atomically (a temporary file in the same directory, fsync, rename),
so a crash at any moment leaves the previous version whole. A run directory is never
reused: when the configured one already holds files, the run goes to DIR-2, DIR-3, ...

Weights files are loaded with ``allow_pickle=False`` and validated against their spec
from the .npy headers before any array data is read.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError, WeightsError

FORMAT = "backprop-weights"
FORMAT_VERSION = 1
RUN_FILES = ("config.yaml", "weights.npz", "checkpoint.npz", "metrics.csv", "summary.json")
FLOAT_DTYPES = ("float32", "float64")


# ---------------------------------------------------------------------------- writing


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(f)`` into a temporary file, fsync, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"{path}: not written ({e.strerror or e}); the earlier version, if any, is untouched"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


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
    for i in range(1, 10_000):
        cand = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            cand.mkdir(parents=True, exist_ok=False)
            return cand
        except FileExistsError:
            if cand.is_dir() and not any(cand.iterdir()):
                return cand
        except OSError as e:
            raise OutputError(
                f"{cand}: cannot create the run directory ({e.strerror or e})"
            ) from None
    raise OutputError(f"{base}: too many runs with this name; choose another output.dir or --out")


def write_metrics(path: Path, rows: list[dict]) -> None:
    """metrics.csv with one row per epoch; columns in first-seen order; NaN as an empty cell."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    write_text(path, buf.getvalue())


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


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an .npz, read from the .npy headers only."""
    headers = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise WeightsError(f"{path}: unexpected member {info.filename!r} in the archive")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise WeightsError(
                        f"{path}: {info.filename}: unsupported .npy version {version}"
                    )
            headers[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    return headers


def load_weights(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(spec, arrays) of a weights file, validated; every problem is one WeightsError line."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, expected a weights .npz file")
    try:
        headers = _npz_headers(path)
        spec = _read_spec(path, headers)
        expected = expected_shapes(spec)
        for name, shape in expected.items():
            if name not in headers:
                raise WeightsError(f"{path}: array {name!r} is missing")
            got_shape, dtype = headers[name]
            if got_shape != shape:
                raise WeightsError(f"{path}: {name} has shape {got_shape}, the spec says {shape}")
            if dtype.name not in FLOAT_DTYPES:
                raise WeightsError(f"{path}: {name} has dtype {dtype}, expected float32 or float64")
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in expected}
    except WeightsError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as e:
        raise WeightsError(
            f"{path}: not a readable weights file ({type(e).__name__}: {e})"
        ) from None
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise WeightsError(f"{path}: {name} holds NaN or Inf values")
    return spec, arrays


def _read_spec(path: Path, headers) -> dict:
    if "spec" not in headers:
        raise WeightsError(f"{path}: no 'spec' entry; not a backprop weights file")
    shape, dtype = headers["spec"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * 1_000_000:
        raise WeightsError(
            f"{path}: the 'spec' entry must be one JSON string (got shape {shape}, dtype {dtype})"
        )
    with np.load(path, allow_pickle=False) as z:
        text = str(z["spec"])
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise WeightsError(
            f"{path}: the spec is not valid JSON ({e.msg} at char {e.pos})"
        ) from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise WeightsError(f"{path}: the spec is not a {FORMAT} spec")
    version = spec.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: format version {version!r} is newer than this backprop reads ({FORMAT_VERSION}); upgrade backprop"
        )
    sizes = spec.get("sizes")
    acts = spec.get("activations")
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(isinstance(s, int) and 0 < s <= 10**6 for s in sizes)
        or not isinstance(acts, list)
        or len(acts) != len(sizes) - 1
    ):
        raise WeightsError(f"{path}: the spec's sizes/activations are malformed")
    from .nn.activations import ACTIVATIONS

    for a in acts:
        if a not in ACTIVATIONS:
            raise WeightsError(f"{path}: the spec names unknown activation {a!r}")
    residual = spec.get("residual", [False] * len(acts))
    if (
        not isinstance(residual, list)
        or len(residual) != len(acts)
        or not all(isinstance(r, bool) for r in residual)
    ):
        raise WeightsError(f"{path}: the spec's residual list is malformed")
    for i, r in enumerate(residual):
        if r and (sizes[i] != sizes[i + 1] or i == len(acts) - 1):
            raise WeightsError(
                f"{path}: the spec marks layer {i} residual, but its widths do not allow it"
            )
    if spec.get("dtype") not in FLOAT_DTYPES:
        raise WeightsError(
            f"{path}: the spec's dtype must be float32 or float64 (got {spec.get('dtype')!r})"
        )
    return spec


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
    """(arrays, state) of a checkpoint, each array checked against the network and optimizer."""
    expected = {"params": net.params.shape, **{f"opt_{k}": v.shape for k, v in opt.state.items()}}
    if need_best:
        expected["best_params"] = net.params.shape
    try:
        headers = _npz_headers(path)
        for name, shape in expected.items():
            if name not in headers:
                raise WeightsError(
                    f"{path}: array {name!r} is missing; the checkpoint is not from this config"
                )
            got, dtype = headers[name]
            if got != shape or dtype != net.dtype:
                raise WeightsError(
                    f"{path}: {name} has shape {got} {dtype}, this config needs {shape} {net.dtype}"
                )
        if "state" not in headers or headers["state"][1].kind != "U":
            raise WeightsError(f"{path}: no training state; not a backprop checkpoint")
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in expected}
            state = json.loads(str(z["state"]))
    except WeightsError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise WeightsError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    return arrays, state
