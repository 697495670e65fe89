"""data.task: classification with mse (one-hot targets, the book's chapter 1), several sigmoid
units with binary cross-entropy (one-hot: the book's chapter 3; several 0/1 columns:
multi-label), and the metrics, weights, eval and predict of each.

References: torch.nn.functional's losses and autograd (when torch is installed), central
differences written here in float64, scikit-learn's metrics, and targets written by hand."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from backprop_cli.config import load_config
from backprop_cli.data import prepare
from backprop_cli.data.dataset import numeric_dataset
from backprop_cli.errors import DataError
from backprop_cli.nn import Network, get_loss
from backprop_cli.nn.metrics import multilabel_report, probabilities

from .conftest import run_cli

RNG = np.random.default_rng(19)
X6 = RNG.normal(size=(6, 4))
LABELS = np.array([0, 2, 1, 2, 0, 1])
ONE_HOT = np.eye(3)[LABELS]
MULTI = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]], float)


def _network(output: str, seed: int = 0) -> Network:
    net = Network([4, 5, 3], ["sigmoid", output], dtype=np.float64)
    rng = np.random.default_rng(seed)
    net.init("normal", rng, scale=1.0, bias="normal")
    return net


def _central_differences(net: Network, X, y, loss, eps: float = 1e-6) -> np.ndarray:
    """dC/dtheta_i ~ (C(theta + eps e_i) - C(theta - eps e_i)) / (2 eps), every i."""
    out = np.empty_like(net.params)
    for i in range(net.params.size):
        keep = net.params[i]
        values = []
        for step in (eps, -eps):
            net.params[i] = keep + step
            a = net.forward(X)
            values.append(loss.value(net._last_z(), a, y))
        net.params[i] = keep
        out[i] = (values[0] - values[1]) / (2 * eps)
    return out


CASES = [
    pytest.param("mse", "sigmoid", ONE_HOT, id="mse-one-hot-sigmoid"),
    pytest.param("mse", "softmax", ONE_HOT, id="mse-one-hot-softmax"),
    pytest.param("mae", "sigmoid", ONE_HOT, id="mae-one-hot"),
    pytest.param("huber", "sigmoid", ONE_HOT, id="huber-one-hot"),
    pytest.param("binary_cross_entropy", "sigmoid", ONE_HOT, id="bce-one-hot"),
    pytest.param("binary_cross_entropy", "sigmoid", MULTI, id="bce-multi-label"),
]


@pytest.mark.parametrize(("loss_name", "output", "y"), CASES)
def test_gradients_equal_central_differences(loss_name, output, y):
    net, loss = _network(output), get_loss(loss_name)
    net.loss_and_grad(X6, y, loss)
    analytic = net.grads.copy()
    numeric = _central_differences(net, X6, y, loss)
    scale = max(np.abs(analytic).max(), np.abs(numeric).max())
    assert np.abs(analytic - numeric).max() / scale < 1e-7


@pytest.mark.parametrize(("loss_name", "output", "y"), CASES)
def test_loss_and_gradients_equal_torchs(loss_name, output, y):
    """mse_loss / l1_loss / huber_loss on one-hot targets, binary_cross_entropy over every
    element (torch's BCELoss mean), and autograd's gradients of W and b."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net, loss = _network(output), get_loss(loss_name)
    value = net.loss_and_grad(X6, y, loss)
    Ws = [torch.tensor(W.copy(), requires_grad=True) for W in net.W]
    bs = [torch.tensor(b.copy(), requires_grad=True) for b in net.b]
    h = torch.sigmoid(torch.tensor(X6) @ Ws[0] + bs[0])
    z = h @ Ws[1] + bs[1]
    a = torch.softmax(z, dim=1) if output == "softmax" else torch.sigmoid(z)
    t = torch.tensor(y)
    fn = {
        "mse": F.mse_loss,
        "mae": F.l1_loss,
        "huber": F.huber_loss,
        "binary_cross_entropy": F.binary_cross_entropy,
    }[loss_name]
    theirs = fn(a, t)
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-12)
    for ours, p in zip(net.gW + net.gb, Ws + bs, strict=True):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-9, atol=1e-15)


def _prepared(loss, units, targets, names=("y",), task="classification"):
    ds = numeric_dataset(np.arange(len(targets) * 2.0).reshape(-1, 2), targets, list(names))
    cfg_data = load_config_data()
    return prepare(ds, cfg_data, loss, 0, np.float64, "t", task=task, units=units)


def load_config_data():
    from backprop_cli.config.models import DataConfig

    return DataConfig(dataset="iris", validation=0, test=0, standardize=False)


def test_targets_as_each_loss_and_output_layer_take_them():
    labels = np.array(["b", "a", "c", "a"])
    p = _prepared("mse", 3, labels)
    assert p.classes == ["a", "b", "c"] and p.task == "classification"
    np.testing.assert_array_equal(p.y["train"], [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]])
    p = _prepared("binary_cross_entropy", 3, labels)
    np.testing.assert_array_equal(p.y["train"], np.eye(3)[[1, 0, 2, 0]])
    p = _prepared("mse", 1, np.array(["no", "yes", "yes", "no"]))  # two classes, one unit
    np.testing.assert_array_equal(p.y["train"], [[0], [1], [1], [0]])
    assert _prepared("cross_entropy", 3, labels).y["train"].tolist() == [1, 0, 2, 0]
    assert _prepared("mse", 1, labels).y["train"].shape == (4, 3)  # refused by the units check
    with pytest.raises(DataError, match="binary_cross_entropy with one output unit needs 2"):
        _prepared("binary_cross_entropy", None, labels)
    multi = _prepared("binary_cross_entropy", 3, MULTI[:4], names=("p", "q", "r"))
    assert multi.multilabel and multi.classes == ["p", "q", "r"] and multi.n_outputs == 3
    np.testing.assert_array_equal(multi.y["train"], MULTI[:4])
    with pytest.raises(DataError, match="target column 'q' is not 0/1"):
        _prepared("binary_cross_entropy", 3, MULTI[:4] * [1, 2, 1], names=("p", "q", "r"))
    with pytest.raises(DataError, match="cross_entropy takes one target column"):
        _prepared("cross_entropy", 3, MULTI[:4], names=("p", "q", "r"))
    # regression with the same loss: values, not classes
    assert _prepared("mse", 1, np.array([1.5, 2.0, 0.0, 1.0]), task="regression").classes is None


MINIMAL = """data: {dataset: iris, validation: 0.2, test: 0.2%s}
model:
  layers: [{units: 8, activation: tanh}, {units: %d, activation: %s}]
loss: %s
optimizer: {name: sgd, lr: 0.5}
training: {epochs: 60, batch_size: 16}
"""


@pytest.mark.parametrize(
    ("task", "units", "output", "loss", "words"),
    [
        (", task: regression", 3, "softmax", "cross_entropy", ["data.task", "cross_entropy classifies"]),
        ("", 3, "softmax", "binary_cross_entropy", ["binary_cross_entropy needs a sigmoid output"]),
        (", task: classification", 2, "sigmoid", "mse", ["units", "3 classes", "set units: 3"]),
        (", task: classification", 1, "sigmoid", "mse", ["units", "3 classes", "set units: 3"]),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(write_config, capsys, task, units, output, loss, words):
    path = write_config(MINIMAL % (task, units, output, loss))
    code, out, err = run_cli(capsys, "validate", path)
    assert code == 2 and err.count("\n") == 1, err
    for w in words:
        assert w in err, err


def test_classification_with_mse_trains_reports_accuracy_and_round_trips(write_config, capsys):
    path = write_config(MINIMAL % (", task: classification", 3, "sigmoid", "mse"))
    assert load_config(path).task == "classification"
    code, out, err = run_cli(capsys, "train", path, "--out", "run", "-q")
    assert code == 0, err
    with open("run/metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["train_accuracy"]) > 0.8 and float(last["val_accuracy"]) > 0.8
    summary = json.loads(open("run/summary.json").read())
    assert summary["task"] == "classification" and summary["test"]["accuracy"] > 0.8
    assert "f1_macro" in summary["test"] and "confusion_matrix" not in summary["test"]
    spec = json.loads(str(np.load("run/weights.npz")["spec"]))
    assert (spec["task"], spec["loss"], spec["version"]) == ("classification", "mse", 3)
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--json")
    result = json.loads(out)
    assert result["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert result["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-6)
    from backprop_cli.api import load

    model = load("run/weights.npz")
    iris = np.loadtxt(
        __import__("pathlib").Path(__file__).parent.parent / "datasets" / "iris.csv",
        delimiter=",",
        skiprows=1,
        usecols=(0, 1, 2, 3),
    )
    names = model.spec.input_columns
    import pandas as pd

    frame = pd.DataFrame(iris, columns=names)
    predicted = model.predict(frame)
    assert set(predicted) <= {"setosa", "versicolor", "virginica"}
    proba = model.predict_proba(frame)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (np.asarray(model.spec.classes, dtype=object)[proba.argmax(axis=1)] == predicted).all()


def test_the_output_rows_become_probabilities():
    out = np.array([[0.9, 0.3, 0.0], [0.0, 0.0, 0.0], [-0.5, 0.5, 1.5]])
    np.testing.assert_allclose(
        probabilities(out), [[0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.25, 0.75]]
    )
    soft = np.array([[0.2, 0.3, 0.5]])
    assert np.array_equal(probabilities(soft), soft)  # a distribution stays as it is


def test_multilabel_report_equals_sklearns():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (40, 4)).astype(float)
    out = np.clip(y * 0.6 + rng.uniform(0, 0.5, y.shape), 0.001, 0.999)
    r = multilabel_report(y, out, ["a", "b", "c", "d"])
    pred = (out >= 0.5).astype(int)
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert r["label_accuracy"] == pytest.approx(1 - sk.hamming_loss(y, pred))
    for k in ("precision", "recall", "f1"):
        want = getattr(sk, f"{k}_score")(y, pred, average="macro", zero_division=0)
        assert r[f"{k}_macro"] == pytest.approx(want)
    assert r["roc_auc"] == pytest.approx(sk.roc_auc_score(y, out, average="macro"))
    bce = -np.mean(y * np.log(out) + (1 - y) * np.log(1 - out))
    assert r["log_loss"] == pytest.approx(bce)
    assert r["per_class"]["b"]["rows"] == int(y[:, 1].sum())


MULTI_CONFIG = """name: tags
data: {path: tags.csv, target: [p, q, r], validation: 0.2, test: 0.2}
model:
  layers: [{units: 16, activation: tanh}, {units: 3, activation: sigmoid}]
  dtype: float64
loss: binary_cross_entropy
optimizer: {name: adam, lr: 0.05}
training: {epochs: 60, batch_size: 16}
"""


def test_multilabel_trains_evaluates_and_predicts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = (X > 0.2).astype(int)  # label j: feature j above 0.2
    rows = ["a,b,c,p,q,r"] + [",".join(map(str, [*x, *t])) for x, t in zip(X, Y, strict=True)]
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "c.yaml").write_text(MULTI_CONFIG)
    code, out, err = run_cli(capsys, "train", "c.yaml", "--out", "run", "-q")
    assert code == 0, err
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    test = summary["test"]
    assert test["accuracy"] > 0.85 and test["label_accuracy"] >= test["accuracy"]
    assert set(test["per_class"]) == {"p", "q", "r"}
    spec = json.loads(str(np.load(tmp_path / "run/weights.npz")["spec"]))
    assert spec["multilabel"] and spec["classes"] == ["p", "q", "r"]
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(test["accuracy"])
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz")
    assert code == 0 and "per label" in out and "label accuracy" in out
    (tmp_path / "new.csv").write_text("a,b,c\n1.0,-1.0,0.9\n-1.0,1.0,-1.0\n")
    code, out, err = run_cli(
        capsys, "predict", "-w", "run/weights.npz", "--data", "new.csv", "--out", "p.csv", "--proba"
    )
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "p,q,r,p_p,p_q,p_r"
    assert [line.split(",")[:3] for line in lines[1:]] == [["1", "0", "1"], ["0", "1", "0"]]


def test_class_weight_is_refused_for_multilabel(tmp_path, capsys):
    rows = "".join(f"{i},{i % 2},{i // 2 % 2}\n" for i in range(20))
    (tmp_path / "tags.csv").write_text("a,p,q\n" + rows)
    text = MULTI_CONFIG.replace("[p, q, r]", "[p, q]").replace("units: 3", "units: 2")
    text = text.replace("epochs: 60, batch_size: 16", "epochs: 1, class_weight: balanced")
    (tmp_path / "c.yaml").write_text(text)
    code, out, err = run_cli(capsys, "train", "c.yaml", "--out", "run")
    assert code == 2 and "training.class_weight" in err and "label columns" in err, err
    assert not (tmp_path / "run").exists()


def test_an_ordered_split_keeps_the_files_order(tmp_path, capsys):
    """data.split: ordered trains on the first rows, validates on the next and tests on the
    last (the book's MNIST split), no shuffling or stratification; eval --split finds the
    same rows again."""
    from backprop_cli.data.prepare import split_indices

    train, val, test = split_indices(10, None, 0.2, 0.3, None)
    assert train.tolist() == [0, 1, 2, 3, 4] and val.tolist() == [5, 6]
    assert test.tolist() == [7, 8, 9]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = np.where(X[:, 0] > 0, "up", "down")
    table = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})
    table.to_csv(tmp_path / "t.csv", index=False)
    table.iloc[90:].to_csv(tmp_path / "last.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "data: {path: t.csv, target: y, validation: 0.2, test: 0.1, split: ordered}\n"
        "model: {layers: [{units: 4, activation: tanh}, {units: 2, activation: softmax}]}\n"
        "training: {epochs: 3}\n"
    )
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "run", "-q")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "-w", "run/weights.npz", "--split", "test", "--json")
    assert code == 0, err
    by_split = json.loads(out)
    code, out, err = run_cli(
        capsys, "eval", "-w", "run/weights.npz", "--data", "last.csv", "--json"
    )
    assert code == 0, err
    by_file = json.loads(out)
    assert by_split["rows"] == by_file["rows"] == 10
    assert by_split["loss"] == pytest.approx(by_file["loss"], rel=1e-12)
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text().replace("ordered", "sorted"))
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "run2", "-q")
    assert code == 2 and "data.split" in err and err.count("\n") == 1
    # a file sorted by class: its last class would never train
    up = table[table.y == "up"].head(20)  # the last 20 rows: all held out (21 of 72)
    pd.concat([table[table.y == "down"], up]).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text().replace("sorted", "ordered"))
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "run3", "-q")
    assert code == 2 and "leaves class 'up' out of the training rows" in err
    assert err.count("\n") == 1 and not (tmp_path / "run3").exists()
