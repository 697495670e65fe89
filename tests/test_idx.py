"""The IDX reader (MNIST, Fashion-MNIST, EMNIST): files the tests write byte by byte, from
the format's description (magic 00 00 TYPE NDIM, big-endian uint32 sizes, big-endian values),
gzip-compressed or not; and Debian's Fashion-MNIST files where they are installed."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.data import load_file
from backprop_cli.data.idx import PIXEL_SCALE
from backprop_cli.errors import DataError

from .conftest import run_cli

CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(values, kind: str = "u1") -> bytes:
    """An IDX file's bytes for an array, written from the format's description."""
    a = np.asarray(values)
    head = struct.pack(">BBBB", 0, 0, CODES[kind], a.ndim)
    head += b"".join(struct.pack(">I", d) for d in a.shape)
    return head + a.astype(f">{kind}").tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


IMAGES = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2) * 8  # 0, 8, ..., 232
LABELS = np.array([3, 1, 4, 1, 5], dtype=np.uint8)


@pytest.mark.parametrize(("gz_images", "gz_labels"), [(True, True), (False, False), (True, False)])
def test_images_are_rows_of_pixels_over_255_and_labels_the_target(tmp_path, gz_images, gz_labels):
    suffix = ".gz" if gz_images else ""
    images = write(tmp_path / f"train-images-idx3-ubyte{suffix}", idx_bytes(IMAGES), gz_images)
    lsuffix = ".gz" if gz_labels else ""
    write(tmp_path / f"train-labels-idx1-ubyte{lsuffix}", idx_bytes(LABELS), gz_labels)
    if gz_images != gz_labels:  # the labels file is found by name, with the images' suffix
        with pytest.raises(DataError, match="no labels file train-labels-idx1-ubyte.gz"):
            load_file(images)
        return
    ds = load_file(images)
    assert ds.X.shape == (5, 6)
    # row i is image i's pixels, row by row: image 1 is 48, 56 / 64, 72 / 80, 88
    np.testing.assert_array_equal(ds.X[1], np.array([48, 56, 64, 72, 80, 88]) / 255.0)
    assert PIXEL_SCALE == 1 / 255
    assert ds.targets.tolist() == [3, 1, 4, 1, 5] and ds.target_names == ["label"]
    assert ds.source["labels"]["path"].endswith(f"train-labels-idx1-ubyte{lsuffix}")


def test_the_mnist_dir_names_and_other_types(tmp_path):
    """train-images.idx3-ubyte's labels are train-labels.idx1-ubyte; int16 and float32
    images are read as they are (big-endian), not scaled."""
    values = np.array([[[-300, 2], [7, 1000]], [[0, -1], [5, 6]]], dtype=np.int16)
    images = write(tmp_path / "train-images.idx3-ubyte", idx_bytes(values, "i2"))
    write(tmp_path / "train-labels.idx1-ubyte", idx_bytes(np.array([0, 1]), "i4"))
    ds = load_file(images)
    np.testing.assert_array_equal(ds.X, [[-300, 2, 7, 1000], [0, -1, 5, 6]])
    floats = write(tmp_path / "a-images-idx2-float", idx_bytes([[0.5, -2.25]], "f4"))
    write(tmp_path / "a-labels-idx1-float", idx_bytes([9], "u1"))
    assert load_file(floats).X.tolist() == [[0.5, -2.25]]


@pytest.mark.parametrize(
    ("images", "labels", "words"),
    [
        (b"\x00\x00\x08", None, ["not an IDX file", "magic number 000008"]),
        (b"PK\x03\x04rest", None, ["not an IDX file", "504b0304"]),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", None, ["not an IDX file"]),
        (idx_bytes(IMAGES)[:-1], None, ["truncated", "5 x 3 x 2", "46 bytes", "has 45"]),
        (idx_bytes(IMAGES)[:10], None, ["truncated", "header"]),
        (idx_bytes(IMAGES) + b"\x00", None, ["longer than its header says"]),
        (gzip.compress(idx_bytes(IMAGES))[:-12], None, ["damaged gzip"]),
        (idx_bytes(IMAGES), idx_bytes(LABELS[:4]), ["4 labels for the 5 images"]),
        (idx_bytes(IMAGES), idx_bytes(IMAGES), ["one integer label per image"]),
        (idx_bytes(LABELS), idx_bytes(LABELS), ["holds labels; give the images file"]),
        (idx_bytes(IMAGES), "absent", ["no labels file train-labels-idx1-ubyte"]),
    ],
    ids=[
        "short-magic", "zip-magic", "bad-type", "truncated-data", "truncated-header", "longer",
        "damaged-gzip", "label-count", "labels-not-1d", "labels-given", "no-labels",
    ],
)  # fmt: skip
def test_bad_files_are_one_line(tmp_path, images, labels, words):
    path = write(tmp_path / "train-images-idx3-ubyte", images)
    if labels != "absent":
        write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(LABELS) if labels is None else labels)
    with pytest.raises(DataError) as e:
        load_file(path)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def mnist_like(root: Path, seed: int = 0) -> None:
    """Small IDX train/test pairs of two classes a network can tell apart (bright left half
    or bright right half), gzip-compressed like the published files."""
    rng = np.random.default_rng(seed)
    for name, n in (("train", 60), ("t10k", 20)):
        y = np.arange(n) % 2
        img = rng.integers(0, 60, size=(n, 4, 4))
        img[y == 0, :, :2] += 180
        img[y == 1, :, 2:] += 180
        write(root / f"{name}-images-idx3-ubyte.gz", idx_bytes(img.astype(np.uint8)), True)
        write(root / f"{name}-labels-idx1-ubyte.gz", idx_bytes(y.astype(np.uint8)), True)


CONFIG = """name: idx
data:
  path: mnist/train-images-idx3-ubyte.gz
  test_path: mnist/t10k-images-idx3-ubyte.gz
  validation: 0.2
  standardize: false
model:
  layers: [{units: 2, activation: softmax}]
loss: cross_entropy
optimizer: {name: sgd, lr: 1.0}
training: {epochs: 20, batch_size: 10}
"""


def test_train_eval_and_predict_on_idx_files(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    mnist_like(tmp_path / "mnist")
    (tmp_path / "c.yaml").write_text(CONFIG)
    code, out, err = run_cli(capsys, "train", "c.yaml", "--out", "run", "-q")
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["rows"] == 20 and summary["test"]["accuracy"] == 1.0
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == 1.0 and "t10k-images" in json.loads(out)["data"]
    code, out, err = run_cli(
        capsys,
        "eval",
        "-w",
        "run/weights.npz",
        "--data",
        "mnist/t10k-images-idx3-ubyte.gz",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["rows"] == 20
    code, out, err = run_cli(
        capsys, "predict", "-w", "run/weights.npz", "--data", "mnist/t10k-images-idx3-ubyte.gz",
        "--out", "p.csv",
    )  # fmt: skip
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "prediction" and lines[1:] == [str(i % 2) for i in range(20)]


FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist, if installed


@pytest.mark.skipif(
    not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_the_real_fashion_mnist_test_files():
    """10,000 images of 28 x 28 pixels, 1,000 of each of the 10 classes (the published counts)."""
    ds = load_file(FASHION / "t10k-images-idx3-ubyte.gz")
    assert ds.X.shape == (10_000, 784)
    assert 0.0 <= ds.X.min() and ds.X.max() == 1.0
    assert np.bincount(ds.targets).tolist() == [1000] * 10
