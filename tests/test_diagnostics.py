"""training/diagnostics.py: the vanishing-gradient warning names the cause and the remedies
that fit the network, and never one it already has; the units counted as off are the ones a
forward pass written out by hand finds at z <= 0 on every row."""

import re

import numpy as np
import pytest

from backprop_cli.config import load_config
from backprop_cli.nn import Network
from backprop_cli.training import Run
from backprop_cli.training.diagnostics import Design, gradient_warnings, units_off, vanishing

# Five relu layers of 32 on the moons with Adam at lr 0.3: most units die within a few epochs
# and the first layers' gradients vanish (seed 0: at epoch 6, layer 0's gradient is 0).
DEEP_RELU = """
name: deep-relu
seed: 0
data: {dataset: moons, validation: 0.2, test: 0.2}
model:
  layers:
    - {units: 32, activation: relu}
    - {units: 32, activation: relu}
    - {units: 32, activation: relu}
    - {units: 32, activation: relu}
    - {units: 32, activation: relu}
    - {units: 2, activation: softmax}
  init: he
loss: cross_entropy
optimizer: {name: adam, lr: 0.3}
training: {epochs: 10, batch_size: 32}
"""


def design(acts, init="he", residual=None, width=8):
    """A network of len(acts) layers on 4 inputs, every hidden layer ``width`` wide."""
    n = len(acts)
    return Design(
        list(acts),
        [init] * n,
        residual or [False] * n,
        [4] + [width] * (n - 1) + [2],
    )


def remedies(message: str) -> str:
    return message.split("Remedies: ", 1)[1]


def by_hand_off(W, b, X, acts) -> tuple[int, int]:
    """(units with z <= 0 on every row, units) of the relu-family hidden layers, by a plain
    forward pass (no residual layers)."""
    off = total = 0
    a = X.astype(np.float64)
    for l, act in enumerate(acts[:-1]):
        z = a @ W[l].astype(np.float64) + b[l].astype(np.float64)
        if act == "relu":
            off += int((z <= 0).all(axis=0).sum())
            total += z.shape[1]
        a = np.maximum(z, 0) if act == "relu" else np.tanh(z)
    return off, total


# ---------------------------------------------------------------------------- counting


def test_units_off_are_the_ones_a_forward_pass_by_hand_finds():
    rng = np.random.default_rng(0)
    acts = ["relu", "tanh", "relu", "softmax"]
    net = Network([5, 7, 6, 9, 3], acts, dtype=np.float64)
    net.init("he", rng)
    net.b[0][[1, 4]] = -50.0  # dead whatever the row
    net.b[2][[0, 2, 8]] = -50.0
    net.b[2][5] = 50.0  # on for every row
    X = rng.normal(size=(300, 5))
    expected = by_hand_off(net.W, net.b, X, acts)
    assert expected[1] == 7 + 9  # the tanh layer is not counted
    assert expected[0] >= 5
    assert units_off(net, X) == expected
    # in chunks of fewer rows than X holds, the same
    from backprop_cli.training import diagnostics

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(diagnostics, "DEAD_ROWS", 64)
        assert units_off(net, X) == expected


# ---------------------------------------------------------------------------- each cause


def test_saturating_units_get_relu_he_residual_and_fewer_layers():
    msg = vanishing(0, 1e-5, 1, design(["sigmoid"] * 4 + ["softmax"], init="xavier"), 0.1, None)
    assert "sigmoid units saturate" in msg
    assert remedies(msg) == (
        "relu (or leaky_relu, elu) instead of sigmoid, init: he, residual: true on "
        "equal-width layers, fewer layers"
    )
    assert "dead" not in msg and "optimizer.lr" not in msg


def test_saturating_units_with_he_and_residual_already_get_neither_again():
    d = design(["tanh"] * 3 + ["softmax"], init="he", residual=[False, True, True, False])
    msg = vanishing(1, 1e-4, 2, d, 0.1, None)
    assert remedies(msg) == "relu (or leaky_relu, elu) instead of tanh, fewer layers"


def test_dead_relu_units_are_counted_and_get_a_lower_lr_and_a_slope():
    d = design(["relu"] * 5 + ["softmax"], init="he")
    msg = vanishing(0, 0.0, 6, d, 0.3, (131, 160))
    assert "131 of the 160 relu units (82%) output 0 for every training row: dead units" in msg
    assert "optimizer.lr is 0.3" in msg
    assert remedies(msg) == (
        "a lower optimizer.lr, leaky_relu or elu instead of relu (a slope for z < 0), "
        "residual: true on equal-width layers, fewer layers"
    )
    assert "init: he" not in msg  # it has He init


def test_dead_units_in_a_residual_relu_network_get_no_residual_again():
    d = design(["relu"] * 3 + ["softmax"], residual=[False, True, True, False])
    msg = vanishing(0, 0.0, 3, d, 0.1, (40, 48))
    assert "residual" not in remedies(msg)
    assert remedies(msg).startswith("a lower optimizer.lr, leaky_relu or elu instead of relu")


def test_units_stuck_off_in_a_leaky_relu_network_get_no_leaky_relu_again():
    d = design(["leaky_relu"] * 3 + ["softmax"], init="xavier")
    msg = vanishing(0, 1e-5, 3, d, 0.5, (20, 24))
    assert "20 of the 24 hidden units (83%) are at z <= 0" in msg
    assert "leaky_relu" not in remedies(msg)
    assert remedies(msg) == (
        "a lower optimizer.lr, init: he, residual: true on equal-width layers, fewer layers"
    )


def test_relu_network_without_dead_units_is_not_told_they_died():
    d = design(["relu"] * 4 + ["softmax"], init="normal")
    msg = vanishing(0, 1e-4, 2, d, 0.01, (1, 32))
    assert "dead" not in msg and "died" not in msg
    assert "1 of the 32 hidden units are at z <= 0" in msg
    assert remedies(msg) == "init: he, residual: true on equal-width layers, fewer layers"


def test_relu_network_with_everything_already_gets_the_lr_and_the_seed():
    d = Design(["relu", "softmax"], ["he"] * 2, [False, False], [4, 8, 2])  # one hidden layer
    msg = vanishing(0, 1e-4, 2, d, 0.01, (0, 8))
    assert remedies(msg) == "a lower optimizer.lr, a different seed"


def test_relu_network_not_counted_is_told_units_may_have_died():
    msg = vanishing(0, 1e-4, 2, design(["relu"] * 3 + ["softmax"]), 0.1, None)
    assert remedies(msg).startswith("a lower optimizer.lr (relu units may have died)")


@pytest.mark.parametrize(
    "acts, init, residual, off",
    [
        (["sigmoid"] * 4 + ["softmax"], "xavier", None, None),
        (["tanh"] * 3 + ["softmax"], "he", [False, True, True, False], None),
        (["relu"] * 5 + ["softmax"], "he", None, (131, 160)),
        (["relu"] * 3 + ["softmax"], "he", [False, True, True, False], (40, 48)),
        (["leaky_relu"] * 3 + ["softmax"], "xavier", None, (20, 24)),
        (["elu", "leaky_relu", "softmax"], "he", None, (10, 16)),
        (["relu"] * 4 + ["softmax"], "he", None, (0, 32)),
    ],
)
def test_no_remedy_is_what_the_network_already_has(acts, init, residual, off):
    d = design(acts, init=init, residual=residual)
    text = remedies(vanishing(0, 1e-5, 1, d, 0.1, off))
    # the activations suggested: every one named, but for what they would replace
    suggested = re.sub(r"instead of [\w/]+|\(relu units may have died\)", "", text)
    assert not set(re.findall(r"\b(relu|leaky_relu|elu|tanh|sigmoid)\b", suggested)) & set(acts)
    if init == "he":
        assert "init: he" not in text
    if residual and all(residual[1:-1]):
        assert "residual" not in text


def test_units_off_are_counted_only_where_they_can_be_the_cause():
    record = {"epoch": 1, "grad_norm_0": 1e-6, "grad_norm_1": 1e-2, "grad_norm_2": 1.0}
    asked = []

    def count():
        asked.append(1)
        return (30, 32)

    sat = design(["sigmoid", "sigmoid", "softmax"])
    assert len(gradient_warnings(record, sat, [], 0.1, count)) == 1
    assert asked == []  # saturating units: nothing to count
    warned: list[str] = []
    [msg] = gradient_warnings(record, design(["relu", "relu", "softmax"]), warned, 0.1, count)
    assert asked == [1] and "30 of the 32 relu units" in msg
    assert gradient_warnings(record, design(["relu", "relu", "softmax"]), warned, 0.1, count) == []
    assert asked == [1] and warned == ["vanishing"]  # once per run, counted once


# ---------------------------------------------------------------------------- a real run


def test_a_relu_network_killed_by_a_large_lr_is_told_so(write_config):
    """The case of the issue: a relu + He network whose gradients vanish because its units
    died after steps too large. The warning counts them as a forward pass by hand does, on
    the parameters of the epoch it is said in, and does not suggest relu or He init."""
    config = write_config(DEEP_RELU)
    run = Run(load_config(config, None), str(config))
    run.start()
    acts = run.net.activation_names
    for record in run.epochs():
        if record.get("warnings"):
            break
    else:
        pytest.fail("no warning in 10 epochs")
    [msg] = record["warnings"]
    dead, total = by_hand_off(run.net.W, run.net.b, run.prep.X["train"], acts)
    assert total == 160 and dead >= 16
    assert f"{dead} of the 160 relu units ({dead / 160:.0%}) output 0" in msg
    assert "optimizer.lr is 0.3" in msg
    assert "relu with" not in msg and "init: he" not in msg and "instead of relu" in msg
