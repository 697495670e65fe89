"""Fixed splits from files (data.validation_path, data.test_path): the rows of those files
are the splits, everything fitted (gaps, categories, scaling, classes) is fitted on the
training file alone, and eval rebuilds the split from its file.

Expected values are worked out by hand from the files the tests write."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from backprop_cli.config import load_config
from backprop_cli.training.build import load_prepared

from .conftest import run_cli

TRAIN = "a,color,y\n1.0,red,0\n3.0,blue,1\n,red,0\n5.0,blue,1\n"
VAL = "y,a,color,extra\n1,2.0,green,9\n0,,red,9\n"
TEST = "a,color,y\n4.0,blue,1\n0.0,red,0\n"

CONFIG = """name: fixed
data:
  path: train.csv
  target: y
  validation_path: val.csv
  test_path: test.csv
model:
  layers: [{units: 2, activation: softmax}]
  dtype: float64
loss: cross_entropy
optimizer: {name: sgd, lr: 0.1}
training: {epochs: 3, batch_size: 2}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "val.csv").write_text(VAL)
    (tmp_path / "test.csv").write_text(TEST)
    (tmp_path / "c.yaml").write_text(CONFIG)
    return tmp_path


def test_the_split_files_are_the_splits_fitted_on_the_training_file_alone(files):
    cfg = load_config(files / "c.yaml")
    assert (cfg.data.validation, cfg.data.test) == (0.0, 0.0)  # nothing held out of train.csv
    prep = load_prepared(cfg, "c.yaml")
    # a: mean of the training file's given values (1, 3, 5) = 3 fills its gap; then its mean
    # and std over the 4 training rows (1, 3, 3, 5): 3 and sqrt(2).
    mean, std = 3.0, np.sqrt(2.0)
    # color: red, blue from the training rows (sorted: blue, red); green is unseen: zeros.
    want = {
        "train": [[(1 - mean) / std, 0, 1], [0, 1, 0], [0, 0, 1], [(5 - mean) / std, 1, 0]],
        "val": [[(2 - mean) / std, 0, 0], [0, 0, 1]],
        "test": [[(4 - mean) / std, 1, 0], [(0 - mean) / std, 0, 1]],
    }
    assert prep.feature_names == ["a", "color=blue", "color=red"]
    for split, rows in want.items():
        np.testing.assert_allclose(prep.X[split], np.array(rows, dtype=float), rtol=1e-15)
    assert prep.y["val"].tolist() == [1, 0] and prep.y["test"].tolist() == [1, 0]
    assert prep.classes == [0, 1]
    assert set(prep.dataset.source) >= {"path", "sha256", "validation_path", "test_path"}


def test_per_epoch_validation_is_on_the_file_and_eval_rebuilds_both(files, capsys):
    code, out, err = run_cli(capsys, "train", files / "c.yaml", "--out", "run", "-q")
    assert code == 0, err
    with open(files / "run" / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    summary = json.loads((files / "run" / "summary.json").read_text())
    assert summary["test"]["rows"] == 2
    for split, loss in (("val", float(last["val_loss"])), ("test", summary["test"]["loss"])):
        code, out, err = run_cli(
            capsys, "eval", "-w", "run/weights.npz", "--split", split, "--json"
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["rows"] == 2 and f"{split} split" in result["data"]
        assert result["loss"] == pytest.approx(loss, rel=1e-12)
    # the training split is the whole training file
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--split", "train", "--json")
    assert json.loads(out)["rows"] == 4
    # a split file changed since training cannot stand for it
    (files / "test.csv").write_text(TEST + "1.0,red,0\n")
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--split", "test")
    assert code == 2 and "test.csv: the file changed since training" in err


def test_only_the_given_split_comes_from_a_file(files):
    """validation_path alone: the test rows are still held out of the training file."""
    text = CONFIG.replace("  test_path: test.csv\n", "  test: 0.5\n").replace(
        "path: train.csv", "path: big.csv"
    )
    rows = "".join(f"{i}.0,{'red' if i % 2 else 'blue'},{i % 2}\n" for i in range(8))
    (files / "big.csv").write_text("a,color,y\n" + rows)
    (files / "c.yaml").write_text(text)
    cfg = load_config(files / "c.yaml")
    assert (cfg.data.validation, cfg.data.test) == (0.0, 0.5)
    prep = load_prepared(cfg, "c.yaml")
    assert (len(prep.X["train"]), len(prep.X["val"]), len(prep.X["test"])) == (4, 2, 4)
    assert prep.indices["val"].tolist() == [8, 9]  # after the training file's 8 rows
    assert sorted([*prep.indices["train"], *prep.indices["test"]]) == list(range(8))
