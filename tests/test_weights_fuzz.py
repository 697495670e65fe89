"""Fuzzing the weights loader: random byte mutations, truncations and member swaps of a real
weights.npz give either one clean WeightsError line or a model that loads and validates,
never another exception."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.cli import main
from backprop_cli.errors import WeightsError
from backprop_cli.store import weights as runs

from .conftest import CONFIGS

N_MUTANTS = 300
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # made on purpose


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    """The bytes of a real weights.npz: iris trained for 2 epochs."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    argv = [
        "train",
        str(CONFIGS / "iris.yaml"),
        "-q",
        "--set",
        "training.epochs=2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return (out / "weights.npz").read_bytes()


def _rezip(data: bytes, rng: np.random.Generator) -> bytes:
    """The same archive with two members' contents swapped, a member renamed, dropped or
    duplicated, or recompressed with deflate."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    op = rng.integers(5)
    if op == 0:
        i, j = rng.choice(len(items), 2, replace=False)
        items[i], items[j] = (items[i][0], items[j][1]), (items[j][0], items[i][1])
    elif op == 1:
        i = rng.integers(len(items))
        j = rng.integers(len(items))
        items[i] = (items[j][0], items[i][1])  # two members of one name
    elif op == 2:
        del items[rng.integers(len(items))]
    elif op == 3:
        i = rng.integers(len(items))
        items[i] = (rng.choice(["W9.npy", "x.npy", "../W0.npy", "W0", "spec.npy.npy"]), items[i][1])
    compression = zipfile.ZIP_DEFLATED if op == 4 or rng.random() < 0.3 else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, blob in items:
            zf.writestr(name, blob)
    return buf.getvalue()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(6)
    b = bytearray(data)
    if kind == 0:  # flip a few random bytes
        for _ in range(rng.integers(1, 9)):
            b[rng.integers(len(b))] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate anywhere
        del b[rng.integers(len(b)) :]
    elif kind == 2:  # overwrite a run of bytes with one value (zeros, 0xff, ...)
        i = int(rng.integers(len(b)))
        b[i : i + int(rng.integers(1, 64))] = bytes([int(rng.integers(256))]) * min(64, len(b) - i)
    elif kind == 3:  # insert or delete a few bytes
        i = int(rng.integers(len(b)))
        if rng.random() < 0.5:
            b[i:i] = rng.bytes(int(rng.integers(1, 16)))
        else:
            del b[i : i + int(rng.integers(1, 16))]
    elif kind == 4:  # change a byte in the .npy headers or the spec text, where they are stored
        markers = (b"shape", b"descr", b"fortran", b"sizes", b"version", b"<f", b"NUMPY")
        where = [i for i in (data.find(m) for m in markers) if i >= 0]
        i = int(rng.choice(where or [0])) + int(rng.integers(0, 12))  # none when deflated
        b[min(i, len(b) - 1)] = int(rng.integers(32, 127))
    else:  # rearrange the archive, then maybe damage it too
        rezipped = _rezip(data, rng)
        return _mutate(rezipped, rng) if rng.random() < 0.5 else rezipped
    return bytes(b)


def _deflated(data: bytes) -> bytes:
    """The same arrays as numpy.savez_compressed would store them."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in items:
            zf.writestr(name, blob)
    return buf.getvalue()


def _check_loaded(spec, arrays: dict[str, np.ndarray]) -> None:
    """What a successful load promises: every array of the spec's shape, float, finite."""
    expected = runs.expected_shapes(spec)
    assert set(arrays) == set(expected)
    for name, shape in expected.items():
        a = arrays[name]
        assert a.shape == shape, name
        assert a.dtype.name in runs.FLOAT_DTYPES, name
        assert np.isfinite(a).all(), name
    net = runs.network_from_weights(spec, arrays)
    assert net.sizes == spec.sizes


def test_valid_file_loads(valid, tmp_path):
    p = tmp_path / "w.npz"
    p.write_bytes(valid)
    _check_loaded(*runs.load_weights(p))


def test_random_mutations_are_a_clean_error_or_a_valid_model(valid, tmp_path):
    rng = np.random.default_rng(20240605)
    p = tmp_path / "w.npz"
    outcomes = {"error": 0, "loaded": 0}
    bases = [valid, _deflated(valid)]  # numpy.savez and numpy.savez_compressed layouts
    for k in range(N_MUTANTS):
        mutant = _mutate(bases[k % 2], rng)
        p.write_bytes(mutant)
        try:
            spec, arrays = runs.load_weights(p)
        except WeightsError as e:
            msg = str(e)
            assert msg.startswith(f"{p}: "), (k, msg)
            assert "\n" not in msg and len(msg) < 1000, (k, msg)
            outcomes["error"] += 1
        else:  # any other exception fails the test, with k to reproduce it
            _check_loaded(spec, arrays)
            outcomes["loaded"] += 1
    assert outcomes["error"] > N_MUTANTS // 2
    assert sum(outcomes.values()) == N_MUTANTS


@pytest.mark.parametrize("deflate", [False, True], ids=["stored", "deflated"])
def test_every_truncation_is_a_clean_error(valid, tmp_path, deflate):
    data = _deflated(valid) if deflate else valid
    p = tmp_path / "w.npz"
    for n in range(0, len(data), max(1, len(data) // 97)):
        p.write_bytes(data[:n])
        with pytest.raises(WeightsError):
            runs.load_weights(p)


def test_the_cli_reports_a_mutant_in_one_line(valid, tmp_path, capsys):
    p = Path(tmp_path / "w.npz")
    p.write_bytes(valid[: len(valid) - 7])
    assert main(["eval", "--weights", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
