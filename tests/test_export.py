"""Exports against their readers: onnxruntime runs the ONNX graph (preprocessing and network)
on held-out rows, gaps and unseen categories included, and gives backprop's outputs;
safetensors.numpy reads back the weights file's arrays."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import backprop_cli as bp
from backprop_cli.data import split_rows
from backprop_cli.inference import training_data

from .conftest import CONFIGS, run_cli

ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported graphs (test extra)")
pytest.importorskip("onnx", reason="the onnx extra builds the graphs")
TOL = 1e-5  # float32


def held_out(model) -> pd.DataFrame:
    ds, _ = training_data(model)
    d = model.spec.data
    _, idx = split_rows(
        ds, model.spec.loss, model.spec.seed, d.validation, d.test, "t", split=d.split
    )
    rows = idx["test"] if len(idx["test"]) else idx["train"]
    return ds.features.iloc[rows].reset_index(drop=True)


def onnx_outputs(model, path, frame) -> dict[str, np.ndarray]:
    from backprop_cli.export import onnx_feeds

    session = ort.InferenceSession(str(path))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feeds(model, frame)), strict=True))


def check(capsys, tmp_path, model_dir, frame) -> float:
    """The largest |ONNX - backprop| over the rows of ``frame``; labels must agree."""
    w = model_dir / "weights.npz"
    code, _, err = run_cli(
        capsys, "export", "--weights", w, "--out", tmp_path / "m.onnx", "--overwrite"
    )
    assert code == 0, err
    model = bp.load(w)
    got = onnx_outputs(model, tmp_path / "m.onnx", frame)
    if model.task == "classification":
        want = model.predict_proba(frame)
        assert got["probabilities"].shape == want.shape
        assert [str(v) for v in got["label"]] == [str(v) for v in model.predict(frame)]
        return float(np.abs(got["probabilities"] - want).max())
    want = model.outputs(frame)
    return float(np.abs(got["prediction"] - want).max() / max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_ready_config_exports_to_what_predict_gives(capsys, tmp_path, config):
    code, _, err = run_cli(
        capsys,
        "train",
        CONFIGS / config,
        "--out",
        tmp_path / "r",
        "-q",
        "--set",
        "training.epochs=3",
    )
    assert code == 0, err
    frame = held_out(bp.load(tmp_path / "r" / "weights.npz"))
    if config == "penguins.yaml":  # gaps and a category training never saw
        frame = frame.copy()
        frame.loc[0, "sex"] = np.nan
        frame.loc[1, "bill_length_mm"] = np.nan
        frame.loc[2, "island"] = "Atlantis"
        frame.loc[3, "year"] = 2031
    assert check(capsys, tmp_path, tmp_path / "r", frame) <= TOL


LAYERS = {
    "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leaky_relu": "leaky_relu",
    "elu": "elu", "softplus": "softplus", "gelu": "gelu", "identity": "identity",
    "softmax": "softmax",
}  # fmt: skip


@pytest.mark.parametrize("hidden", sorted(LAYERS))
@pytest.mark.parametrize(
    ("loss", "output", "target"),
    [
        ("cross_entropy", "softmax", "species"),
        ("binary_cross_entropy", "sigmoid", "sex"),
        ("mse", "identity", "body_mass_g"),
        ("mae", "identity", "body_mass_g"),
        ("huber", "tanh", "bill_depth_mm"),
    ],
)
def test_every_activation_and_loss_kind(capsys, tmp_path, hidden, loss, output, target):
    units = 1 if loss != "cross_entropy" else 3
    (tmp_path / "c.yaml").write_text(
        f"data: {{dataset: penguins, target: {target}, dropna: true, missing_indicator: true}}\n"
        "model:\n  layers:\n"
        f"    - {{units: 6, activation: {hidden}}}\n"
        f"    - {{units: 6, activation: {hidden}, residual: true, dropout: 0.1}}\n"
        f"    - {{units: {units}, activation: {output}}}\n"
        f"loss: {loss}\ntraining: {{epochs: 2}}\n"
    )
    if target != "species":  # the built-in's target is species: train on the file instead
        table = pd.read_csv(CONFIGS.parent / "datasets" / "penguins.csv")
        table.to_csv(tmp_path / "p.csv", index=False)
        text = (tmp_path / "c.yaml").read_text().replace("dataset: penguins", "path: p.csv")
        (tmp_path / "c.yaml").write_text(text)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    model = bp.load(tmp_path / "r" / "weights.npz")
    frame = held_out(model)
    assert check(capsys, tmp_path, tmp_path / "r", frame) <= TOL


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_multilabel_model_exports_each_labels_output(capsys, tmp_path, monkeypatch, dtype):
    """Several 0/1 targets: ``probabilities`` is each label's own output and ``label`` the
    (N, labels) 0/1 matrix ``predict`` gives, gaps in the columns included."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    Y = (X + 0.3 * rng.normal(size=X.shape) > 0.2).astype(int)
    table = pd.DataFrame(np.hstack([X, Y]), columns=["a", "b", "c", "p", "q", "r"])
    table[["p", "q", "r"]] = table[["p", "q", "r"]].astype(int)
    table.to_csv(tmp_path / "tags.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "data: {path: tags.csv, target: [p, q, r], validation: 0.2, test: 0.2}\n"
        "model:\n  layers: [{units: 8, activation: tanh}, {units: 3, activation: sigmoid}]\n"
        f"  dtype: {dtype}\n"
        "loss: binary_cross_entropy\noptimizer: {name: adam, lr: 0.05}\n"
        "training: {epochs: 20, batch_size: 16}\n"
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "r", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", "-w", "r/weights.npz", "--out", "m.onnx")
    assert code == 0, err
    model = bp.load(tmp_path / "r" / "weights.npz")
    frame = held_out(model)
    frame.loc[0, "b"] = np.nan  # a gap: the training mean, as predict fills it
    got = onnx_outputs(model, tmp_path / "m.onnx", frame)
    want = model.predict(frame)
    assert got["label"].dtype == np.int64 and got["label"].shape == want.shape == (len(frame), 3)
    np.testing.assert_array_equal(got["label"], want)
    assert 0 < want.sum() < want.size  # both 0s and 1s
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(frame), atol=TOL)


def test_safetensors_holds_the_weights_files_arrays(capsys, tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy", reason="the safetensors extra")
    code, _, err = run_cli(capsys, "train", CONFIGS / "iris.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    w = tmp_path / "r" / "weights.npz"
    code, _, err = run_cli(capsys, "export", "--weights", w, "--format", "safetensors")
    assert code == 0, err
    got = safetensors.load_file(str(w.with_suffix(".safetensors")))
    with np.load(w) as z:
        assert set(got) == set(z.files) - {"spec"}
        for name, array in got.items():
            np.testing.assert_array_equal(array, z[name])


def test_a_missing_extra_is_one_line(capsys, tmp_path, monkeypatch):
    code, _, err = run_cli(capsys, "train", CONFIGS / "xor.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    code, _, err = run_cli(capsys, "export", "--weights", tmp_path / "r" / "weights.npz")
    assert code == 2 and "pip install 'backprop-cli[onnx]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "weights.onnx").exists()
    code, _, err = run_cli(
        capsys, "export", "--weights", tmp_path / "r" / "weights.npz", "--format", "pt"
    )
    assert code == 2 and "expected one of onnx, safetensors" in err


@pytest.mark.parametrize(
    ("loss", "output"),
    [("mse", "sigmoid"), ("binary_cross_entropy", "sigmoid"), ("huber", "identity")],
)
def test_classification_with_a_unit_per_class_exports_what_predict_gives(
    capsys, tmp_path, loss, output
):
    """Outputs that are not a softmax: ONNX's probabilities are predict_proba's (clipped at
    0, over their sum), its labels predict's."""
    (tmp_path / "c.yaml").write_text(
        "data: {dataset: penguins, dropna: true, task: classification}\n"
        f"model:\n  layers: [{{units: 6, activation: tanh}}, {{units: 3, activation: {output}}}]\n"
        f"loss: {loss}\noptimizer: {{name: sgd, lr: 0.5}}\ntraining: {{epochs: 3}}\n"
    )
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    model = bp.load(tmp_path / "r" / "weights.npz")
    assert check(capsys, tmp_path, tmp_path / "r", held_out(model)) <= TOL
