"""The Python API (backprop_cli.api): the command line's engine on data in memory."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import backprop_cli as bp

from .conftest import CONFIGS, ROOT, run_cli

PENGUINS = """name: p
seed: 3
data: {path: penguins.csv, target: species, validation: 0.1, test: 0.2, columns: {year: categorical}}
model:
  layers: [{units: 8, activation: tanh}, {units: 3, activation: softmax}]
optimizer: {name: adam, lr: 0.01}
training: {epochs: 6, batch_size: 16}
"""


def test_in_memory_training_gives_the_command_lines_weights(capsys, tmp_path, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    table = pd.read_csv(ROOT / "datasets" / "penguins.csv")
    table.to_csv("penguins.csv", index=False)
    (tmp_path / "c.yaml").write_text(PENGUINS)
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "r", "-q")
    assert code == 0, err
    config = yaml.safe_load(PENGUINS)
    model = bp.train(config, X=table.drop(columns="species"), y=table["species"])
    cli = bp.load(tmp_path / "r" / "weights.npz")
    for a, b in zip(model.net.tensors(), cli.net.tensors(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.mean, cli.mean)
    assert model.spec.columns == cli.spec.columns

    new = table.sample(frac=1.0, random_state=0).iloc[:40]
    new = new[list(reversed(new.columns))]  # by name, in any order
    new.to_csv("new.csv", index=False)
    code, out, err = run_cli(
        capsys, "predict", "-w", "r/weights.npz", "--data", "new.csv", "--proba"
    )
    assert code == 0, err
    written = pd.read_csv(io.StringIO(out))
    assert model.predict(new).tolist() == written["prediction"].tolist()
    proba = model.predict_proba(new)
    np.testing.assert_allclose(proba, written[[f"p_{c}" for c in model.spec.classes]], rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)

    saved = model.save(tmp_path / "m.npz")  # a weights file the command line reads
    code, out, err = run_cli(capsys, "eval", "-w", saved, "--data", "new.csv", "--json")
    assert code == 0, err


def test_a_configs_own_data_and_a_run_directory(tmp_path):
    config = CONFIGS / "iris.yaml"
    model = bp.train(config)
    run_dir = bp.train_run(config, out=str(tmp_path / "run"))
    saved = bp.load(run_dir / "weights.npz")
    for a, b in zip(model.net.tensors(), saved.net.tensors(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (run_dir / "summary.json").exists()


def test_regression_in_the_targets_units():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = 1000 + 300 * X[:, 0] - 50 * X[:, 1]
    model = bp.train(
        {
            "model": {
                "layers": [
                    {"units": 16, "activation": "tanh"},
                    {"units": 1, "activation": "identity"},
                ]
            },
            "loss": "mse",
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 60},
        },
        X=X,
        y=y,
    )
    pred = model.predict(X)
    assert pred.shape == (200,) and abs(pred.mean() - y.mean()) < 30
    assert 1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum() > 0.9
    with pytest.raises(bp.api.ConfigError):
        model.predict_proba(X)


def test_bad_input_is_a_clear_error():
    from backprop_cli.errors import BackpropError

    config = {"model": {"layers": [{"units": 2, "activation": "softmax"}]}}
    with pytest.raises(BackpropError, match="give both X and y"):
        bp.train(config, X=np.zeros((4, 2)))
    with pytest.raises(BackpropError, match="3 target"):
        bp.train(config, X=np.zeros((4, 2)), y=[0, 1, 0])
    model = bp.train(config, X=np.arange(40.0).reshape(20, 2), y=[0, 1] * 10)
    with pytest.raises(BackpropError, match="no column 'x1'"):
        model.predict(pd.DataFrame({"x0": [1.0]}))


def test_sample_weight_in_memory_is_the_files_weight_column(capsys, tmp_path):
    """sample_weight= gives the weights data.sample_weight's column gives on the command line."""
    import yaml

    rng = np.random.default_rng(1)
    t = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    t["label"] = np.where(t["a"] - t["b"] > 0, "p", "q")
    t["w"] = rng.uniform(0, 3, size=60).round(3)
    t.to_csv(tmp_path / "w.csv", index=False)
    config = (
        "name: w\nseed: 4\ndata: {path: w.csv, target: label, validation: 0.2, test: 0, "
        "sample_weight: w}\nmodel: {layers: [{units: 4, activation: tanh}, "
        "{units: 2, activation: softmax}]}\ntraining: {epochs: 4, batch_size: 8}\n"
    )
    (tmp_path / "c.yaml").write_text(config)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    cli = bp.load(tmp_path / "r" / "weights.npz")
    model = bp.train(yaml.safe_load(config), X=t[["a", "b"]], y=t["label"], sample_weight=t["w"])
    for a, b in zip(model.net.tensors(), cli.net.tensors(), strict=True):
        np.testing.assert_array_equal(a, b)
    unweighted = bp.train(yaml.safe_load(config), X=t[["a", "b"]], y=t["label"])
    assert not np.array_equal(unweighted.net.tensors()[0], cli.net.tensors()[0])


def test_bad_sample_weights_are_clear_errors():
    from backprop_cli.errors import BackpropError

    config = {"model": {"layers": [{"units": 2, "activation": "softmax"}]}}
    X, y = np.arange(40.0).reshape(20, 2), [0, 1] * 10
    for weights, message in (
        ([1.0] * 19, r"one weight per row of X, shape \(20,\)"),
        ([-1.0] + [1.0] * 19, "1 cell.*negative"),
        ([0.0] * 20, "all zeros"),
        (["a"] * 20, "expected numbers"),
    ):
        with pytest.raises(BackpropError, match=message):
            bp.train(config, X=X, y=y, sample_weight=weights)
    with pytest.raises(BackpropError, match="sample_weight goes with X and y"):
        bp.train(CONFIGS / "iris.yaml", sample_weight=[1.0])
