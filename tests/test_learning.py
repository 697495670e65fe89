"""It learns: the example configs reach the accuracy and R^2 the README promises."""

import json

import numpy as np
import pytest

from backprop_cli.cli import main
from backprop_cli.config import load_config
from backprop_cli.training import Run

from .conftest import CONFIGS


def train(capsys, config, *sets):
    args = ["train", str(CONFIGS / config), "--json"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_xor_learns_all_four_points():
    cfg = load_config(CONFIGS / "xor.yaml")
    run = Run(cfg, "xor.yaml")
    run.start()
    for _ in run.epochs():
        pass
    out = run.net.predict(run.prep.X["train"])
    assert np.array_equal((out[:, 0] > 0.5).astype(int), [0, 1, 1, 0])
    assert run.rows[-1]["train_r2"] > 0.95


def test_digits_reaches_95_percent(capsys):
    summary = train(capsys, "digits.yaml")
    assert summary["test"]["accuracy"] >= 0.95


def test_regression_r2_above_0_9(capsys):
    summary = train(capsys, "regression.yaml")
    assert summary["test"]["r2"] >= 0.9


def test_binary_cross_entropy(capsys):
    summary = train(capsys, "breast-cancer.yaml")
    assert summary["test"]["accuracy"] >= 0.93


@pytest.mark.parametrize(
    "config", ["spirals-sgd-momentum.yaml", "wine-rmsprop.yaml", "circles-adamw.yaml", "iris.yaml"]
)
def test_each_optimizer_family_learns(capsys, config):
    summary = train(capsys, config)
    assert summary["test"]["accuracy"] >= 0.9


def test_deep_sigmoid_learns_far_slower_than_relu(capsys):
    sig = train(capsys, "deep-sigmoid.yaml")
    relu = train(capsys, "moons-relu.yaml")
    assert relu["final"]["train_loss"] < 0.5 * sig["final"]["train_loss"]


def test_stochastic_and_full_batch_gradient_descent(capsys):
    one = train(capsys, "iris.yaml", "training.batch_size=1", "training.epochs=5")
    full = train(capsys, "iris.yaml", "training.batch_size=full", "training.epochs=5")
    # 90 rows: 90 updates per epoch against 1; the per-sample run is far ahead after 5 epochs.
    assert one["final"]["train_loss"] < full["final"]["train_loss"]
    assert one["test"]["accuracy"] >= 0.8
