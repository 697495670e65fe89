"""Seeing training: trace against the trainer's gradients and hand-worked updates, the plots
(files, dimensions, not blank, every panel), the decision regions, `runs`, the config
schema against every config in configs/, shell completion, the end-of-training sparklines."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.cli import console, main, training_view
from backprop_cli.config import load_config
from backprop_cli.trace import trace_config
from backprop_cli.training import Run

from .conftest import CONFIGS, ROOT, assert_one_line_error, run_cli

# ---------------------------------------------------------------------------- trace

HIDDEN_SOFTMAX = """
name: hidden-softmax
seed: 3
data: {dataset: moons, n_samples: 60, validation: 0, test: 0}
model:
  layers:
    - {units: 5, activation: softmax}
    - {units: 4, activation: gelu}
    - {units: 1, activation: tanh}
  dtype: float64
loss: huber
optimizer: {name: rmsprop, lr: 0.01, momentum: 0.5}
training: {epochs: 2}
"""


def _trainer_grads(config, overrides, sample, rows):
    """dC/dW^l, dC/db^l and C from the network's own forward/backward (Network.loss_and_grad)."""
    run = Run(load_config(config, overrides), str(config))
    X = run.prep.X["train"][sample : sample + rows]
    y = run.prep.y["train"][sample : sample + rows]
    C = run.net.loss_and_grad(X, y, run.loss, train=False)
    return C, [g.copy() for g in run.net.gW], [g.copy() for g in run.net.gb], run


@pytest.mark.parametrize(
    "name, overrides, sample, rows",
    [
        ("xor.yaml", [], 0, 4),  # float64, sigmoid + mse: the general BP1
        ("digits.yaml", [], 5, 3),  # float32, softmax + cross-entropy fused
        ("breast-cancer.yaml", [], 2, 1),  # sigmoid + binary cross-entropy fused
        ("regression.yaml", [], 0, 6),  # identity output, mse
        ("wine-rmsprop.yaml", [], 1, 2),  # elu
        ("vanishing-fixed.yaml", [], 0, 3),  # residual layers
        # residual and dropout together: the trace runs with dropout off (evaluation mode)
        (
            "vanishing-fixed.yaml",
            ["model.layers[0].dropout=0.3", "model.layers[3].dropout=0.5"],
            7,
            2,
        ),
        ("vanishing-fixed.yaml", ["model.dtype=float64"], 0, 3),
        ("hidden-softmax", [], 4, 5),  # softmax hidden layer (Jacobian), huber, float64
    ],
)
def test_trace_gradients_equal_the_trainers(name, overrides, sample, rows, write_config):
    config = write_config(HIDDEN_SOFTMAX) if name == "hidden-softmax" else CONFIGS / name
    t = trace_config(config, overrides, sample=sample, rows=rows)
    C, gW, gb, run = _trainer_grads(config, overrides, sample, rows)
    rtol = 1e-12 if t["dtype"] == "float64" else 1e-6
    assert t["dtype"] == str(run.net.dtype)
    assert t["C"] == pytest.approx(C, rel=rtol)
    assert len(t["layers"]) == run.net.n_layers
    for l, layer in enumerate(t["layers"]):
        for mine, theirs in ((layer["dW"], gW[l]), (layer["db"], gb[l])):
            assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
            np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())
    if any(run.net.dropout):
        assert t["dropout_off"] == [l for l, p in enumerate(run.net.dropout) if p]


def test_trace_forward_and_deltas_follow_the_equations():
    t = trace_config(CONFIGS / "xor.yaml", [], sample=0, rows=4)
    layers, x, y = t["layers"], t["x"], t["y"]
    a_prev = x
    for layer in layers:  # z^l = a^(l-1) W^l + b^l, a^l = sigmoid(z^l), by hand
        np.testing.assert_allclose(layer["z"], a_prev @ layer["W"] + layer["b"], rtol=1e-12)
        np.testing.assert_allclose(layer["a"], 1 / (1 + np.exp(-layer["z"])), rtol=1e-12)
        a_prev = layer["a"]
    out, hidden = layers[1], layers[0]
    assert not t["fused"]
    assert t["C"] == pytest.approx(np.mean((out["a"] - y) ** 2), rel=1e-12)
    # BP1 for mse: dC/da = 2 (a - y) / (n k); sigma' = a (1 - a)
    grad = 2 * (out["a"] - y) / out["a"].size
    np.testing.assert_allclose(out["delta"], grad * out["a"] * (1 - out["a"]), rtol=1e-12)
    # BP2
    expect = (out["delta"] @ out["W"].T) * hidden["a"] * (1 - hidden["a"])
    np.testing.assert_allclose(hidden["delta"], expect, rtol=1e-12)


def test_trace_fused_output_error_is_a_minus_y_over_n():
    t = trace_config(CONFIGS / "digits.yaml", [], sample=0, rows=3)
    last = t["layers"][-1]
    onehot = np.eye(10)[t["y"]]
    assert t["fused"]
    np.testing.assert_allclose(last["delta"], (last["a"] - onehot) / 3, rtol=1e-6, atol=1e-9)


def test_trace_update_sgd_is_minus_lr_times_the_gradient():
    # xor: sgd with momentum 0.9, lr 2; the first step's momentum buffer is the gradient itself
    t = trace_config(CONFIGS / "xor.yaml", [], sample=0, rows=4)
    lr = t["optimizer"]["lr"]
    assert t["optimizer"]["name"] == "sgd"
    for layer in t["layers"]:
        np.testing.assert_allclose(layer["update_W"], -lr * layer["dW"], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(layer["update_b"], -lr * layer["db"], rtol=1e-9, atol=1e-15)


def test_trace_update_adam_first_step_and_clipping(write_config):
    # Adam's first step is lr * g / (|g| + eps) (bias corrections cancel): about lr * sign(g).
    t = trace_config(CONFIGS / "iris.yaml", ["model.dtype=float64"], sample=0, rows=2)
    lr, eps = t["optimizer"]["lr"], t["optimizer"]["hyper"]["eps"]
    for layer in t["layers"]:
        g = layer["dW"]
        np.testing.assert_allclose(layer["update_W"], -lr * g / (np.abs(g) + eps), rtol=1e-6)
    # clip_grad_norm scales the whole gradient by max / (norm + 1e-6) before the step (sgd here)
    t = trace_config(
        CONFIGS / "xor.yaml", ["training.clip_grad_norm=0.01", "optimizer.momentum=0"], rows=4
    )
    grads = np.concatenate([np.r_[lay["dW"].ravel(), lay["db"]] for lay in t["layers"]])
    norm = np.linalg.norm(grads)
    coef = 0.01 / (norm + 1e-6)
    clip = t["optimizer"]["clip"]
    assert clip["scaled"] and clip["norm"] == pytest.approx(norm)
    for layer in t["layers"]:
        np.testing.assert_allclose(layer["update_W"], -2.0 * coef * layer["dW"], rtol=1e-9)


def test_trace_update_leaves_the_network_as_it_was():
    from backprop_cli.trace import trace_pass, trace_update
    from backprop_cli.training import build_optimizer

    run = Run(load_config(CONFIGS / "digits.yaml"), "digits.yaml")
    params, grads = run.net.params.copy(), run.net.grads.copy()
    t = trace_pass(run.net, run.loss, run.prep.X["train"][:4], run.prep.y["train"][:4])
    trace_update(run.net, t["layers"], lambda n: build_optimizer(run.cfg, n), 0.01, 1.0)
    np.testing.assert_array_equal(run.net.params, params)
    np.testing.assert_array_equal(run.net.grads, grads)
    assert np.abs(t["layers"][0]["update_W"]).max() > 0


def test_trace_uses_a_weights_file(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", CONFIGS / "iris.yaml", "--quiet", "--set", "training.epochs=2"
    )
    assert code == 0, err
    weights = tmp_path / "runs" / "iris" / "weights.npz"
    stored = np.load(weights, allow_pickle=False)
    t = trace_config(CONFIGS / "iris.yaml", [], weights=weights)
    for l, layer in enumerate(t["layers"]):
        np.testing.assert_array_equal(layer["W"], stored[f"W{l}"])
    # architecture mismatch: one line, exit 2
    code, _, err = run_cli(capsys, "trace", CONFIGS / "digits.yaml", "--weights", weights)
    assert code == 2
    assert_one_line_error(err, "--weights", "architecture")


def test_trace_cli_human_and_json(capsys):
    code, out, err = run_cli(
        capsys,
        "trace",
        CONFIGS / "vanishing-fixed.yaml",
        "--rows",
        "2",
        "--set",
        "model.layers[0].dropout=0.2",
    )
    assert code == 0, err
    for text in ("forward pass", "BP1", "BP2", "BP3", "BP4", "delta^8", "dC/dW^0", "ΔW^0", "…"):
        assert text in out, text
    assert "dropout" in out and "off" in out
    assert "(layer 2 is residual)" in out
    code, out, err = run_cli(capsys, "trace", CONFIGS / "iris.yaml", "--sample", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    ref = trace_config(CONFIGS / "iris.yaml", [], sample=3)
    assert data["C"] == pytest.approx(ref["C"])
    assert data["sample"] == 3 and data["rows"] == 1
    for mine, theirs in zip(data["layers"], ref["layers"], strict=True):
        for key in ("z", "a", "delta", "dW", "db", "update_W", "update_b"):
            np.testing.assert_allclose(np.array(mine[key]), theirs[key], rtol=1e-6)
    assert data["optimizer"]["name"] == "adam"


def test_trace_bad_rows(capsys):
    code, _, err = run_cli(capsys, "trace", CONFIGS / "iris.yaml", "--sample", "1000")
    assert code == 2
    assert_one_line_error(err, "--sample", "training split")
    code, _, err = run_cli(capsys, "trace", CONFIGS / "iris.yaml", "--rows", "0")
    assert code == 2
    assert_one_line_error(err, "--rows")


# ---------------------------------------------------------------------------- runs to look at


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A few short real runs, trained once for this module: {config stem: run dir}."""
    base = tmp_path_factory.mktemp("trained")
    dirs = {}
    for stem, epochs in (
        ("digits", 3),
        ("moons-relu", 3),
        ("vanishing-sigmoid", 2),
        ("vanishing-fixed", 2),
        ("regression", 2),
    ):
        out = base / "runs" / stem
        code = main(
            [
                "train",
                str(CONFIGS / f"{stem}.yaml"),
                "--quiet",
                "--out",
                str(out),
                "--set",
                f"training.epochs={epochs}",
            ]
        )
        assert code == 0
        dirs[stem] = out
    return dirs


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "runs" / run.name
    shutil.copytree(run, dest)
    return dest


# ---------------------------------------------------------------------------- plot


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _assert_png(path: Path, min_w: int, min_h: int):
    from matplotlib import image

    img = image.imread(str(path))
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, img.shape
    pixels = img.reshape(-1, img.shape[-1])
    assert len(np.unique(pixels[:: max(1, len(pixels) // 20000)], axis=0)) > 10  # not blank
    assert img[..., :3].std() > 0.05


def test_training_figure_has_every_panel(trained):
    pytest.importorskip("matplotlib")
    from backprop_cli.cli import plots

    fig = plots.training_figure([trained["digits"]])
    titles = _titles(fig)
    for title in (
        plots.TITLE_LOSS,
        plots.TITLE_ACCURACY,
        plots.TITLE_LR,
        plots.TITLE_GRADS,
        plots.TITLE_GRADS_LAST,
    ):
        assert title in titles, (title, titles)
    grads = fig.axes[titles.index(plots.TITLE_GRADS)]
    assert grads.get_yscale() == "log"
    assert len(grads.get_lines()) == 2  # one line per layer
    with open(trained["digits"] / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose(
        grads.get_lines()[0].get_ydata(), [float(r["grad_norm_0"]) for r in rows]
    )
    loss = fig.axes[titles.index(plots.TITLE_LOSS)]
    assert len(loss.get_lines()) == 2  # train and validation
    fig = plots.training_figure([trained["regression"]])
    assert plots.TITLE_R2 in _titles(fig)


def test_training_figure_overlays_runs(trained):
    pytest.importorskip("matplotlib")
    from backprop_cli.cli import plots

    fig = plots.training_figure([trained["vanishing-sigmoid"], trained["vanishing-fixed"]])
    titles = _titles(fig)
    loss = fig.axes[titles.index(plots.TITLE_LOSS)]
    labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert any("vanishing-sigmoid" in s for s in labels)
    assert any("vanishing-fixed" in s for s in labels)
    grads = fig.axes[titles.index(plots.TITLE_GRADS)]
    assert len(grads.get_lines()) == 2 * 9  # nine layers each
    last = fig.axes[titles.index(plots.TITLE_GRADS_LAST)]
    sigmoid, fixed = (line.get_ydata() for line in last.get_lines())
    assert sigmoid[0] < 1e-2 * sigmoid[-1]  # the vanishing-gradient picture
    assert fixed[0] > 1e-2 * fixed[-1]


def test_plot_cli_writes_pngs(capsys, trained, tmp_path):
    pytest.importorskip("matplotlib")
    run = _copy(trained["digits"], tmp_path)
    code, _, err = run_cli(capsys, "plot", run)
    assert code == 0, err
    _assert_png(run / "plot.png", 1000, 700)
    before = (run / "plot.png").read_bytes()
    code, _, err = run_cli(capsys, "plot", run)  # never overwritten by surprise
    assert code == 2
    assert_one_line_error(err, "already exists", "--overwrite")
    assert (run / "plot.png").read_bytes() == before
    code, _, err = run_cli(capsys, "plot", run, "--overwrite")
    assert code == 0, err
    # several runs: plot.png in the current directory
    code, _, err = run_cli(capsys, "plot", trained["vanishing-sigmoid"], trained["vanishing-fixed"])
    assert code == 0, err
    _assert_png(tmp_path / "plot.png", 1000, 700)
    code, _, err = run_cli(capsys, "plot", tmp_path / "nothing-here")
    assert code == 2
    assert_one_line_error(err, "nothing-here")


def test_plot_boundary(capsys, trained, tmp_path):
    pytest.importorskip("matplotlib")
    from backprop_cli.cli import plots

    out = tmp_path / "b.png"
    code, _, err = run_cli(capsys, "plot", trained["moons-relu"], "--boundary", "--out", out)
    assert code == 0, err
    _assert_png(out, 400, 400)
    fig = plots.boundary_figure([trained["moons-relu"]])
    (ax,) = fig.axes
    assert "decision regions" in ax.get_title()
    regions = ax.get_images()[0].get_array()
    colours = np.unique(regions[..., :3].reshape(-1, 3).round(3), axis=0)
    assert len(colours) >= 2  # both classes have a region
    assert len(ax.collections) >= 2  # the points of both classes
    code, _, err = run_cli(capsys, "plot", trained["digits"], "--boundary", "--out", "d.png")
    assert code == 2
    assert_one_line_error(err, "2 numeric input features", "64")


def test_plot_without_matplotlib(capsys, trained, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    code, out, err = run_cli(capsys, "plot", trained["digits"], "--out", "x.png")
    assert code == 2
    assert err == "error: plot needs the matplotlib package: pip install 'backprop-cli[plot]'\n"
    assert not Path("x.png").exists()


# ---------------------------------------------------------------------------- runs


def test_runs_table_json_and_sort(capsys, trained, tmp_path):
    for stem in ("digits", "moons-relu", "regression"):
        _copy(trained[stem], tmp_path)
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    code, out, err = run_cli(capsys, "runs")
    assert code == 0, err
    for name in ("digits", "moons-relu", "regression"):
        assert name in out
    assert "val loss" in out and "completed" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "broken" in warnings[0]

    code, out, _ = run_cli(capsys, "runs", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["digits", "moons-relu", "regression"]
    summary = json.loads((tmp_path / "runs" / "digits" / "summary.json").read_text())
    digits = rows[0]
    assert digits["epochs"] == 3 == summary["epochs"]
    assert digits["val_loss"] == summary["best"]["val_loss"]
    assert digits["val_accuracy"] == summary["best"]["val_accuracy"]
    assert digits["stop_reason"] == "completed"
    assert rows[2]["val_r2"] == summary_r2(tmp_path) and rows[2]["val_accuracy"] is None
    assert digits["date"][:4].isdigit() and "T" in digits["date"]

    code, out, _ = run_cli(capsys, "runs", "--json", "--sort", "val_loss")
    losses = [json.loads(line)["val_loss"] for line in out.splitlines()]
    assert losses == sorted(losses)
    code, out, _ = run_cli(capsys, "runs", "--json", "--sort", "-val_loss")
    assert [json.loads(line)["val_loss"] for line in out.splitlines()] == sorted(losses)[::-1]
    code, out, _ = run_cli(capsys, "runs", "--json", "--sort=-val_accuracy")
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert names[-1] == "regression"  # no accuracy: last, whatever the direction
    code, out, err = run_cli(capsys, "runs", "--sort", "nonsense")
    assert code == 2
    assert_one_line_error(err, "nonsense", "val_loss", "epochs", "date")
    code, out, err = run_cli(capsys, "runs", tmp_path / "missing")
    assert code == 2
    assert_one_line_error(err, "missing")


def summary_r2(tmp_path):
    return json.loads((tmp_path / "runs" / "regression" / "summary.json").read_text())["best"][
        "val_r2"
    ]


# ---------------------------------------------------------------------------- schema


def test_committed_schema_is_current(capsys):
    from backprop_cli.schema import schema_text

    committed = (ROOT / "backprop.schema.json").read_text()
    assert committed == schema_text(), (
        "regenerate: backprop schema --out backprop.schema.json --overwrite"
    )
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0 and out == committed


def test_schema_out_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "schema", "--out", "s.json")
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "backprop config"
    code, _, err = run_cli(capsys, "schema", "--out", "s.json")
    assert code == 2
    assert_one_line_error(err, "already exists")
    assert run_cli(capsys, "schema", "--out", "s.json", "--overwrite")[0] == 0


CONFIG_FILES = sorted(CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_validates_against_the_schema(path):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from backprop_cli.schema import config_schema

    assert path.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../backprop.schema.json"
    )
    jsonschema.validate(yaml.safe_load(path.read_text()), config_schema())


BASE = {"data": {"dataset": "moons"}, "model": {"layers": [{"units": 2, "activation": "softmax"}]}}


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"layers": [{"units": -1}]}},
        {"model": {"layers": [{"units": 2, "activation": "relux"}]}},
        {"optimizr": {"name": "sgd"}},
        {"model": {"layers": [{"units": 2}], "dropuot": 0.1}},
        {"optimizer": {"name": "sgd", "lr": -0.1}},
        {"optimizer": "adamm"},
        {"training": {"batch_size": "half"}},
        {"training": {"lr_schedule": "cosine"}},  # cosine needs T_max: no shorthand
        {"data": {"dataset": "mnist"}},
    ],
)
def test_schema_rejects_broken_configs(change, write_config, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from backprop_cli.schema import config_schema

    config = {**BASE, **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, config_schema())
    # the reference: the config loader refuses it too
    code, _, err = run_cli(capsys, "validate", write_config(yaml.safe_dump(config)))
    assert code == 2, err


@pytest.mark.parametrize(
    "change",
    [
        {"optimizer": "sgd"},
        {"training": {"lr_schedule": "constant"}},
        {"training": {"batch_size": "full"}},
    ],
)
def test_schema_accepts_what_the_loader_accepts(change, write_config, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from backprop_cli.schema import config_schema

    config = {**BASE, **change}
    jsonschema.validate(config, config_schema())
    code, _, err = run_cli(capsys, "validate", write_config(yaml.safe_dump(config)))
    assert code == 0, err


# ---------------------------------------------------------------------------- completion


def _backprop_command() -> list[str]:
    script = Path(sys.executable).parent / "backprop"
    if script.exists():
        return [str(script)]
    code = "import sys; sys.argv[0] = 'backprop'; from backprop_cli.cli import run; run()"
    return [sys.executable, "-c", code]


def test_shell_completion_script_and_completions():
    env = {**os.environ, "_BACKPROP_COMPLETE": "source_bash"}
    proc = subprocess.run(_backprop_command(), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _backprop_completion backprop" in proc.stdout
    assert "_BACKPROP_COMPLETE=complete_bash" in proc.stdout
    env = {
        **os.environ,
        "_BACKPROP_COMPLETE": "complete_bash",
        "COMP_WORDS": "backprop tr",
        "COMP_CWORD": "1",
    }
    proc = subprocess.run(_backprop_command(), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["train", "trace"]
    env = {**os.environ, "_BACKPROP_COMPLETE": "source_zsh"}
    proc = subprocess.run(_backprop_command(), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "#compdef backprop" in proc.stdout


def test_visual_module_imports_nothing_heavy():
    code = (
        "import sys, backprop_cli.cli; "
        "print(sorted(m for m in ('numpy', 'pandas', 'pydantic', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------- sparklines


def test_sparkline_scales_from_lowest_to_highest():
    sparkline = training_view.sparkline
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▁▁▁"
    assert sparkline([1000, 100, 10, 1], log=True) == "█▆▃▁"  # 7 * (2/3, 1/3) = 4.67, 2.33
    assert sparkline([1, 0.5, 0], log=True) == "█▅▁"  # a zero: linear, as it must
    assert sparkline([2.0, float("nan"), 1.0]) == "█▁"
    assert len(sparkline(list(range(1000)))) == training_view.SPARK_WIDTH
    assert training_view.history_lines([]) == []
    assert training_view.history_lines([{"train_loss": 1.0, "val_loss": float("nan")}]) == []


def test_training_summary_shows_sparklines(capsys):
    code, out, err = run_cli(capsys, "train", CONFIGS / "digits.yaml", "--set", "training.epochs=4")
    assert code == 0, err
    lines = out.splitlines()
    loss = next(line for line in lines if line.startswith("loss  train "))
    with open("runs/digits/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    train = [float(r["train_loss"]) for r in rows]
    assert training_view.sparkline(train, log=True) in loss
    assert f"{console.fmt(train[0])} -> {console.fmt(train[-1])}" in loss
    assert " val " in loss
    grads = next(line for line in lines if line.startswith("grads  "))
    norms = [float(rows[-1]["grad_norm_0"]), float(rows[-1]["grad_norm_1"])]
    assert training_view.grad_strip(norms) in grads
    code, out, err = run_cli(
        capsys, "train", CONFIGS / "digits.yaml", "--set", "training.epochs=2", "--json"
    )
    assert code == 0 and "▁" not in out and "█" not in out
