"""Training controls: each one changes training the way it should, checked against a
reference computed independently (by hand, or by a plain re-computation)."""

import csv
import json

import numpy as np
import pytest

from backprop_cli.cli import main
from backprop_cli.config import load_config
from backprop_cli.nn import Network, get_loss, gradcheck
from backprop_cli.training import Run

from .conftest import CONFIGS

IRIS = CONFIGS / "iris.yaml"


def train_json(capsys, config, *sets, expect=0):
    args = ["train", str(config), "--json"]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == expect, err
    return [json.loads(line) for line in out.splitlines()], err


def read_metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def weights(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "spec"}


def make_run(config, *sets):
    run = Run(load_config(config, list(sets)), str(config))
    run.start()
    return run


# ---------------------------------------------------------------------------- early stopping


def test_early_stopping_stops_and_restores_the_best_epoch(capsys, tmp_path):
    # A high learning rate makes the validation loss wander: patience 3 ends it early.
    lines, _ = train_json(
        capsys,
        IRIS,
        "optimizer.lr=0.2",
        "training.epochs=200",
        "training.early_stopping={patience: 3}",
    )
    summary = lines[-1]
    rows = read_metrics(tmp_path / "runs/iris/metrics.csv")
    val = [float(r["val_loss"]) for r in rows]
    best = int(np.argmin(val)) + 1
    assert summary["stop_reason"] == "early_stopping"
    assert len(rows) == best + 3 < 200  # stopped exactly `patience` epochs after the best
    assert summary["best"]["epoch"] == best and summary["restored_best"]
    # weights.npz holds the best epoch's weights: its val loss is the best one.
    code = main(["eval", "-w", "runs/iris/weights.npz", "--split", "val", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["loss"] == pytest.approx(min(val), rel=1e-5)


def test_restore_best_without_stopping_and_max_mode(capsys, tmp_path):
    lines, _ = train_json(
        capsys,
        IRIS,
        "optimizer.lr=0.2",
        "training.epochs=15",
        "training.early_stopping={monitor: val_accuracy, patience: 100}",
    )
    rows = read_metrics(tmp_path / "runs/iris/metrics.csv")
    acc = [float(r["val_accuracy"]) for r in rows]
    assert lines[-1]["stop_reason"] == "completed" and len(rows) == 15
    assert lines[-1]["best"]["epoch"] == int(np.argmax(acc)) + 1  # mode inferred: max for accuracy
    with np.load("runs/iris/weights.npz") as z:
        assert json.loads(str(z["spec"]))["restored_best_epoch"] == int(np.argmax(acc)) + 1


def test_early_stopping_monitor_must_be_a_column(capsys):
    code = main(["train", str(IRIS), "--set", "training.early_stopping={monitor: val_los}"])
    err = capsys.readouterr().err
    assert code == 2 and "training.early_stopping.monitor" in err and "val_los" in err


def test_monitoring_val_needs_a_validation_split(capsys):
    code = main(
        ["train", str(IRIS), "--set", "data.validation=0", "--set", "training.early_stopping={}"]
    )
    assert code == 2 and "needs a validation split" in capsys.readouterr().err


# ---------------------------------------------------------------------------- schedules in training


def test_lr_of_each_epoch_is_in_metrics(capsys, tmp_path):
    train_json(
        capsys,
        IRIS,
        "training.epochs=8",
        "optimizer.lr=0.1",
        "training.lr_schedule={name: step, step_size: 3, gamma: 0.5}",
        "training.warmup={total_iters: 2, start_factor: 0.5}",
    )
    lrs = [float(r["lr"]) for r in read_metrics(tmp_path / "runs/iris/metrics.csv")]
    # warmup 0.05, 0.075; then StepLR from 0.1: 0.1 x3, 0.05 x3
    assert lrs == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05], rel=1e-12)


def test_reduce_on_plateau_lowers_the_lr_when_val_loss_stalls(capsys, tmp_path):
    train_json(
        capsys,
        IRIS,
        "training.epochs=60",
        "optimizer.lr=0.05",
        "training.lr_schedule={name: reduce_on_plateau, patience: 2, factor: 0.5}",
    )
    rows = read_metrics(tmp_path / "runs/iris/metrics.csv")
    lrs = [float(r["lr"]) for r in rows]
    val = [float(r["val_loss"]) for r in rows]
    assert lrs[0] == 0.05 and min(lrs) < 0.05
    # Replay torch's rule on the logged val_loss: each drop follows 3 epochs without a 1e-4 rel gain.
    lr, best, bad = 0.05, float("inf"), 0
    for epoch, v in enumerate(val[:-1]):
        assert lrs[epoch] == pytest.approx(lr)
        best, bad = (v, 0) if v < best * (1 - 1e-4) else (best, bad + 1)
        if bad > 2:
            lr, bad = lr * 0.5, 0


# ---------------------------------------------------------------------------- clipping


def one_full_batch_step(*sets):
    run = make_run(
        IRIS,
        "training.epochs=1",
        "training.batch_size=full",
        "optimizer=sgd",
        "optimizer.lr=1.0",
        "training.shuffle=false",
        *sets,
    )
    before = run.net.params.copy()
    # the gradient at the starting point, computed independently of the trainer
    ref = Network(run.net.sizes, run.net.activation_names, dtype=run.net.dtype)
    ref.params[:] = before
    ref.loss_and_grad(run.prep.X["train"], run.prep.y["train"], get_loss("cross_entropy"))
    list(run.epochs())
    return before, run.net.params.copy(), ref.grads.copy(), run


def test_clip_grad_norm_scales_the_whole_gradient():
    before, after, g, run = one_full_batch_step("training.clip_grad_norm=0.01")
    step = before - after  # lr 1: the step is the clipped gradient
    assert np.linalg.norm(g) > 0.01
    assert np.linalg.norm(step) == pytest.approx(
        0.01 * np.linalg.norm(g) / (np.linalg.norm(g) + 1e-6), rel=1e-4
    )
    np.testing.assert_allclose(
        step / np.linalg.norm(step), g / np.linalg.norm(g), atol=1e-5
    )  # same direction
    assert run.rows[0]["clipped_batches"] == 1


def test_clip_grad_norm_leaves_small_gradients_alone():
    before, after, g, _ = one_full_batch_step("training.clip_grad_norm=1000")
    np.testing.assert_allclose(before - after, g, rtol=1e-5, atol=1e-7)


def test_clip_grad_value_clamps_each_entry():
    before, after, g, _ = one_full_batch_step("training.clip_grad_value=0.001")
    np.testing.assert_allclose(before - after, np.clip(g, -0.001, 0.001), rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------------- dropout, residual, init


def test_dropout_and_residual_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    net = Network(
        [4, 6, 6, 6, 3],
        ["tanh", "relu", "sigmoid", "softmax"],
        dtype=np.float64,
        dropout=[0.3, 0.5, 0.2, 0.0],
        residual=[False, True, True, False],
    )
    net.init("xavier", rng)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    checks = gradcheck(net, X, y, get_loss("cross_entropy"), rng=rng)
    assert max(c.rel_error for c in checks) < 1e-6


def test_residual_forward_is_the_sum():
    rng = np.random.default_rng(1)
    net = Network([3, 3, 2], ["tanh", "identity"], dtype=np.float64, residual=[True, False])
    net.init("normal", rng, scale=0.5)
    X = rng.normal(size=(4, 3))
    a1 = np.tanh(X @ net.W[0] + net.b[0]) + X
    np.testing.assert_allclose(net.forward(X), a1 @ net.W[1] + net.b[1], rtol=1e-12)


def test_dropout_masks_scale_and_are_off_in_eval():
    rng = np.random.default_rng(2)
    net = Network([5, 2000, 1], ["relu", "identity"], dtype=np.float64, dropout=[0.25, 0.0])
    net.init("he", rng)
    X = rng.normal(size=(3, 5))
    net.sample_masks(3, rng)
    mask = net._buffers[3].mask[0]
    assert set(np.unique(mask)) == {0.0, 1 / 0.75}
    assert abs((mask == 0).mean() - 0.25) < 0.02
    plain = net.forward(X).copy()
    dropped = net.forward(X, train=True).copy()
    assert not np.allclose(plain, dropped)
    np.testing.assert_array_equal(net.predict(X), plain)  # evaluation never drops


def test_dropout_changes_training_but_not_determinism(capsys, tmp_path):
    train_json(capsys, IRIS, "training.epochs=3", "model.layers[0].dropout=0.5", "output.dir=a")
    train_json(capsys, IRIS, "training.epochs=3", "model.layers[0].dropout=0.5", "output.dir=b")
    train_json(capsys, IRIS, "training.epochs=3", "output.dir=c")
    a, b, c = weights("a/weights.npz"), weights("b/weights.npz"), weights("c/weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W0"], c["W0"])


def test_residual_needs_equal_widths(capsys):
    code = main(
        [
            "train",
            str(CONFIGS / "digits.yaml"),
            "--set",
            "model.layers[0].residual=true",
            "--set",
            "model.layers[0].units=32",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "model.layers[0].residual" in err and "64" in err
    code = main(["validate", str(CONFIGS / "digits.yaml"), "--set", "model.layers[1].dropout=0.5"])
    assert code == 2 and "output layer" in capsys.readouterr().err


def test_per_layer_init_override():
    run = Run(
        load_config(
            CONFIGS / "digits.yaml", ["model.layers[1].init=normal", "model.init_scale=0.01"]
        ),
        "digits.yaml",
    )
    assert abs(run.net.W[0].std() / np.sqrt(2 / 64) - 1) < 0.05  # he
    assert abs(run.net.W[1].std() / 0.01 - 1) < 0.1  # normal(0, init_scale)


def test_residual_weights_load_for_eval_and_predict(capsys, tmp_path):
    train_json(capsys, CONFIGS / "vanishing-fixed.yaml", "training.epochs=3")
    code = main(["eval", "-w", "runs/vanishing-fixed/weights.npz", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["accuracy"] > 0.8


# ---------------------------------------------------------------------------- diagnostics


def test_gradient_diagnostics_in_metrics(capsys, tmp_path):
    before, after, g, run = one_full_batch_step()
    row = run.rows[0]
    sl = run.net.layer_slices()
    for l, s in enumerate(sl):
        assert row[f"grad_norm_{l}"] == pytest.approx(np.linalg.norm(g[s]), rel=1e-5)
        assert row[f"weight_norm_{l}"] == pytest.approx(np.linalg.norm(after[s]), rel=1e-5)
        assert row[f"update_ratio_{l}"] == pytest.approx(
            np.linalg.norm(g[s]) / np.linalg.norm(before[s]), rel=1e-4
        )


def test_vanishing_gradients_are_warned_once_and_the_fix_is_not(capsys):
    lines, _ = train_json(capsys, CONFIGS / "vanishing-sigmoid.yaml")
    warnings = [line for line in lines if line["event"] == "warning"]
    assert len(warnings) == 1
    assert (
        "vanishing gradients: layer 0" in warnings[0]["message"]
        and "residual" in warnings[0]["message"]
    )
    sig = lines[-1]
    lines, _ = train_json(capsys, CONFIGS / "vanishing-fixed.yaml")
    assert not [line for line in lines if line["event"] == "warning"]
    fixed = lines[-1]
    assert sig["test"]["accuracy"] <= 0.6 < 0.95 <= fixed["test"]["accuracy"]
    epochs = [line for line in lines if line["event"] == "epoch"]
    assert epochs[-1]["grad_norm_0"] / epochs[-1]["grad_norm_8"] > 1e-2


def test_plain_output_shows_the_gradient_strip_and_warning(capsys):
    assert (
        main(["train", str(CONFIGS / "vanishing-sigmoid.yaml"), "--set", "training.epochs=2"]) == 0
    )
    out, err = capsys.readouterr()
    assert "grad_norms" in out.splitlines()[0]
    assert err.startswith("warning: vanishing gradients")


# ---------------------------------------------------------------------------- divergence


REG = CONFIGS / "regression.yaml"
# The raw targets (0..30): SGD at lr 0.05 overflows on them within the first epoch.
DIVERGE = (
    "optimizer=sgd",
    "optimizer.lr=0.05",
    "training.epochs=3",
    "data.standardize_target=false",
)


def test_divergence_names_epoch_batch_and_layer(capsys, tmp_path):
    lines, err = train_json(capsys, REG, *DIVERGE, expect=3)
    assert "epoch 1, batch 12" in err and "first non-finite at layer" in err
    assert lines[-1]["stop_reason"] == "diverged"


def test_rollback_retries_with_half_the_lr(capsys, tmp_path):
    lines, _ = train_json(
        capsys, REG, *DIVERGE, "training.on_divergence=rollback", "output.dir=rolled"
    )
    assert lines[0]["event"] == "warning" and "rollback 1" in lines[0]["message"]
    assert lines[-1]["rollbacks"] == 1 and lines[-1]["stop_reason"] == "completed"
    assert [line["lr"] for line in lines if line["event"] == "epoch"] == [0.025] * 3
    # The retried epoch starts from the same state, shuffle included: the same as lr 0.025 from the start.
    train_json(
        capsys,
        REG,
        "optimizer=sgd",
        "optimizer.lr=0.025",
        "training.epochs=3",
        "data.standardize_target=false",
        "output.dir=direct",
    )
    a, b = weights("rolled/weights.npz"), weights("direct/weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_rollback_gives_up_after_max_rollbacks(capsys):
    _, err = train_json(
        capsys,
        REG,
        "optimizer=sgd",
        "optimizer.lr=10",
        "training.epochs=2",
        "training.on_divergence=rollback",
        "training.max_rollbacks=2",
        expect=3,
    )
    assert "after 2 rollback(s)" in err


def test_every_rollback_is_reported_even_when_all_fail(capsys):
    lines, err = train_json(
        capsys,
        REG,
        "optimizer=sgd",
        "optimizer.lr=10",
        "training.epochs=2",
        "training.on_divergence=rollback",
        "training.max_rollbacks=3",
        expect=3,
    )
    summary = lines[-1]
    assert [w[:10] for w in summary["warnings"]] == ["rollback 1", "rollback 2", "rollback 3"]
    assert "after 3 rollback(s)" in err and "on_divergence: rollback" not in err
