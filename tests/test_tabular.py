"""Real tabular data end to end (issue 14): regression targets trained standardized and
reported in their units, per target; the metrics as early-stopping monitors and CI gates."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from .conftest import CONFIGS, run_cli

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference (test extra)")

REGRESSION = """name: reg
data: {path: houses.csv, target: [price, rent], validation: 0, test: 0}
model:
  layers: [{units: 16, activation: relu}, {units: 2, activation: identity}]
  dtype: float64
loss: mse
optimizer: {name: adam, lr: 0.01}
training: {epochs: 30, batch_size: 16}
"""


def houses(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 7, n)
    area = rng.normal(80, 25, n)
    town = rng.choice(["north", "south", "east"], n)
    price = (
        3000 * area + 20000 * rooms + np.where(town == "north", 50000, 0) + rng.normal(0, 9000, n)
    )
    rent = 0.004 * price + rng.normal(0, 40, n)
    return pd.DataFrame({"rooms": rooms, "area": area, "town": town, "price": price, "rent": rent})


def test_regression_targets_train_standardized_and_report_in_their_units(capsys, tmp_path):
    """Targets in the hundreds of thousands used to be trained as they are (R^2 -60 on the
    README's houses); now they are standardized on the training rows and every number eval
    and predict give is in the target's own units, per target as well as their mean."""
    table = houses()
    table.to_csv(tmp_path / "houses.csv", index=False)
    (tmp_path / "c.yaml").write_text(REGRESSION)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    with np.load(tmp_path / "r" / "weights.npz") as z:
        spec = json.loads(str(z["spec"]))
    y = table[["price", "rent"]].to_numpy()
    np.testing.assert_allclose(spec["y_mean"], y.mean(axis=0), rtol=1e-12)  # all rows train
    np.testing.assert_allclose(spec["y_scale"], y.std(axis=0), rtol=1e-12)

    w = tmp_path / "r" / "weights.npz"
    code, out, err = run_cli(capsys, "predict", "-w", w, "--data", tmp_path / "houses.csv")
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))[["price", "rent"]].to_numpy()
    code, out, err = run_cli(capsys, "eval", "-w", w, "--data", tmp_path / "houses.csv", "--json")
    assert code == 0, err
    r = json.loads(out)
    rel = 1e-6  # predict's CSV holds 8 significant digits
    assert r["loss"] == pytest.approx(np.mean((pred - y) ** 2), rel=rel)
    assert r["r2"] == pytest.approx(sk.r2_score(y, pred), rel=rel)
    assert r["r2"] > 0.8
    assert r["mae"] == pytest.approx(sk.mean_absolute_error(y, pred), rel=rel)
    for j, name in enumerate(("price", "rent")):
        t = r["per_target"][name]
        assert t["r2"] == pytest.approx(sk.r2_score(y[:, j], pred[:, j]), rel=rel)
        assert t["rmse"] == pytest.approx(
            sk.mean_squared_error(y[:, j], pred[:, j]) ** 0.5, rel=rel
        )
    code, _, err = run_cli(capsys, "eval", "-w", w, "--data", tmp_path / "houses.csv",
                           "--max-rmse", "1")  # fmt: skip
    assert code == 1 and "rmse" in err and "> --max-rmse 1" in err
    code, _, err = run_cli(capsys, "eval", "-w", w, "--min-f1", "0.5")
    assert code == 2 and "--min-f1: this is a regression model" in err


def test_a_sigmoid_output_keeps_its_targets(capsys, tmp_path):
    """standardize_target: auto leaves 0..1 targets alone for a bounded output layer (XOR's)."""
    code, out, err = run_cli(
        capsys, "train", CONFIGS / "xor.yaml", "--out", tmp_path / "x", "--json"
    )
    assert code == 0, err
    with np.load(tmp_path / "x" / "weights.npz") as z:
        assert json.loads(str(z["spec"]))["y_mean"] is None


def test_f1_as_an_early_stopping_monitor(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "train", CONFIGS / "iris.yaml", "--out", tmp_path / "r", "--json",
        "--set", "training.early_stopping={monitor: val_f1_macro, patience: 3}",
        "--set", "training.epochs=40",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    rows = pd.read_csv(tmp_path / "r" / "metrics.csv")
    assert "val_f1_macro" in rows and summary["best_by"] == "val_f1_macro"
    assert summary["best"]["epoch"] == int(rows["epoch"][rows["val_f1_macro"].idxmax()])
    assert 0 <= rows["val_f1_macro"].min() and rows["val_f1_macro"].max() <= 1
    for key in ("f1_macro", "roc_auc", "balanced_accuracy", "log_loss"):
        assert key in summary["test"]
    code, _, err = run_cli(
        capsys, "validate", CONFIGS / "iris.yaml",
        "--set", "training.early_stopping={monitor: val_rmse}",
    )  # fmt: skip
    assert code == 2 and "'val_rmse' is not a metrics.csv column" in err


# ---------------------------------------------------------------------------- reading files


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("semi.csv", "a;b;label\n1;2;x\n3;4;y\n5;6;x\n7;8;y\n"),
        ("tabs.csv", "a\tb\tlabel\n1\t2\tx\n3\t4\ty\n5\t6\tx\n7\t8\ty\n"),
        ("pipes.txt", "a|b|label\n1|2|x\n3|4|y\n5|6|x\n7|8|y\n"),
        ("quoted.csv", '"a","b","label"\n1,2,"x"\n3,4,"y"\n5,6,"x"\n7,8,"y"\n'),
        ("semi-in-quotes.csv", '"a;1",b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n'),
    ],
)
def test_the_delimiter_is_sniffed_from_the_header(tmp_path, name, text):
    """A tab-separated file named .csv used to be read as one column, with no hint."""
    from backprop_cli.data import load_file

    (tmp_path / name).write_text(text)
    ds = load_file(tmp_path / name, target="label")
    assert len(ds.feature_names) == 2 and ds.features.shape == (4, 2)
    assert ds.targets.tolist() == ["x", "y", "x", "y"]


def test_a_forced_wrong_delimiter_gets_a_hint(capsys, tmp_path):
    (tmp_path / "t.csv").write_text("a\tb\tlabel\n1\t2\tx\n3\t4\ty\n")
    (tmp_path / "c.yaml").write_text(
        'data: {path: t.csv, target: label, sep: ","}\n'
        "model: {layers: [{units: 2, activation: softmax}]}\n"
    )
    code, _, err = run_cli(capsys, "validate", tmp_path / "c.yaml")
    assert code == 2 and "read as one column" in err and "data.sep: '\\t'" in err


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_records_train_and_predict(capsys, tmp_path, suffix):
    table = houses(120)
    if suffix == ".json":
        table.to_json(tmp_path / f"h{suffix}", orient="records")
    else:
        table.to_json(tmp_path / f"h{suffix}", orient="records", lines=True)
    (tmp_path / "c.yaml").write_text(REGRESSION.replace("houses.csv", f"h{suffix}"))
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "predict", "-w", tmp_path / "r" / "weights.npz", "--data", tmp_path / f"h{suffix}",
        "--keep", "town,rooms",
    )  # fmt: skip
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    assert list(pred.columns) == ["town", "rooms", "price", "rent"]
    assert pred["town"].tolist() == table["town"].tolist()  # the ids beside their predictions
    code, _, err = run_cli(
        capsys, "predict", "-w", tmp_path / "r" / "weights.npz", "--data", tmp_path / f"h{suffix}",
        "--keep", "id",
    )  # fmt: skip
    assert code == 2 and "no column 'id' to keep" in err


# ---------------------------------------------------------------------------- imbalance


def test_balanced_class_weights_are_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    from backprop_cli.config import load_config
    from backprop_cli.training import build

    cfg = load_config(CONFIGS / "imbalanced.yaml")
    s = build.setup(cfg, "imbalanced.yaml")
    w = build.row_weights(cfg, s.prep, "imbalanced.yaml")
    y = s.prep.y["train"]
    want = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(w["train"], want[y], rtol=1e-12)
    assert w["test"] is not None and len(w["test"]) == len(s.prep.y["test"])


def test_class_weight_finds_the_rare_class(capsys, tmp_path):
    """configs/imbalanced.yaml: balanced class weights raise the rare class's recall."""
    recall = {}
    for how in ("balanced", "null"):
        out = tmp_path / how
        code, _, err = run_cli(
            capsys, "train", CONFIGS / "imbalanced.yaml", "--out", out, "-q",
            "--set", f"training.class_weight={how}",
        )  # fmt: skip
        assert code == 0, err
        code, text, err = run_cli(capsys, "eval", "-w", out / "weights.npz", "--json")
        recall[how] = json.loads(text)["per_class"]["1"]["recall"]
    assert recall["balanced"] > recall["null"] + 0.15


def test_sample_weights_from_a_column(capsys, tmp_path):
    """data.sample_weight: a column of row weights, not a feature; zero-weight rows are ignored
    by training (the same weights as a file without those rows)."""
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    t["label"] = np.where(t["a"] + t["b"] > 0, "p", "q")
    t["w"] = np.where(np.arange(80) % 4 == 0, 0.0, 1.0)
    t.to_csv(tmp_path / "weighted.csv", index=False)
    config = (
        "name: w\ndata: {path: weighted.csv, target: label, validation: 0, test: 0, "
        "standardize: false, sample_weight: w}\n"
        "model: {layers: [{units: 2, activation: softmax}], dtype: float64}\n"
        "optimizer: {name: sgd, lr: 0.1}\ntraining: {epochs: 3, batch_size: full, shuffle: false}\n"
    )
    (tmp_path / "c.yaml").write_text(config)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    t[t["w"] > 0].drop(columns="w").to_csv(tmp_path / "kept.csv", index=False)
    (tmp_path / "k.yaml").write_text(
        config.replace("weighted.csv", "kept.csv").replace(", sample_weight: w", "")
    )
    code, _, err = run_cli(capsys, "train", tmp_path / "k.yaml", "--out", tmp_path / "k", "-q")
    assert code == 0, err
    with np.load(tmp_path / "r" / "weights.npz") as a, np.load(tmp_path / "k" / "weights.npz") as b:
        assert json.loads(str(a["spec"]))["feature_names"] == ["a", "b"]  # w is no feature
        np.testing.assert_allclose(a["W0"], b["W0"], rtol=1e-12)
        np.testing.assert_allclose(a["b0"], b["b0"], rtol=1e-12, atol=1e-15)
