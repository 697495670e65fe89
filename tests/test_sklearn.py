"""The scikit-learn estimators (backprop_cli.sklearn): scikit-learn's own conformance checks,
pipelines and searches, the command line's weights for the same config, DataFrames with text
columns and gaps."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn", minversion="1.6", reason="the estimators need scikit-learn >= 1.6")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import load_iris, make_friedman1  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

import backprop_cli as bp  # noqa: E402
from backprop_cli.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

from .conftest import ROOT, run_cli  # noqa: E402

FAST = {"hidden_layers": (8,), "epochs": 20, "lr": 0.02, "batch_size": 16}
ESTIMATORS = [
    MLPClassifier(**FAST),
    MLPRegressor(**FAST),
    MLPClassifier(**FAST, dtype="float64"),
    MLPRegressor(**FAST, dtype="float64"),
]

WEIGHTS_ARE_NOT_REPEATS = (
    "mini-batch training draws rows, not weights: a row repeated k times lands in k places "
    "of an epoch's batches, a row of weight k in one; and the standardization of X (and of a "
    "regression target) is fitted on the rows, unweighted. The loss's weighting itself is "
    "the repeats' (test_weights_are_repeats_where_training_makes_them_so)"
)
FLOAT32_ROUNDING = (
    "float32, the config's default dtype: a row's outputs can differ by one float32 ulp "
    "(~3e-7) with the batch it is computed in (BLAS blocks a product by its rows), and the "
    "check allows 1e-7; the float64 instances pass it"
)


def expected_failures(estimator) -> dict[str, str]:
    """The checks whose demand conflicts with the tool's design, and why."""
    failures = {"check_sample_weight_equivalence_on_dense_data": WEIGHTS_ARE_NOT_REPEATS}
    if estimator.dtype != "float64":
        failures["check_methods_subset_invariance"] = FLOAT32_ROUNDING
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_scikit_learns_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_weights_are_repeats_where_training_makes_them_so(Estimator):
    """With the whole set in one batch and no statistics fitted on the rows, a weight of k is
    k repeats of the row (scikit-learn's check, in float64)."""
    extra = {} if Estimator is MLPClassifier else {"standardize_target": False}
    est = Estimator(
        (8,), epochs=20, lr=0.02, batch_size="full", standardize=False, dtype="float64", **extra
    )
    check_sample_weight_equivalence_on_dense_data(Estimator.__name__, est)


def test_in_a_pipeline_and_a_grid_search():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(epochs=40, batch_size=16))
    grid = {"mlpclassifier__hidden_layers": [(4,), (16, 16)], "mlpclassifier__lr": [1e-4, 0.02]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert search.best_params_["mlpclassifier__lr"] == 0.02  # 40 epochs of 1e-4 learn little
    assert search.best_score_ > 0.9
    assert (search.predict(X) == y).mean() > 0.9
    assert search.predict_proba(X).shape == (150, 3)

    X, y = make_friedman1(n_samples=400, noise=0.1, random_state=0)  # sin, square: nonlinear
    model = make_pipeline(StandardScaler(), MLPRegressor((32,), epochs=100, lr=0.01))
    linear = cross_val_score(LinearRegression(), X, y, cv=3).mean()  # R^2 0.74
    assert cross_val_score(model, X, y, cv=3).mean() > linear + 0.1


def penguins() -> pd.DataFrame:
    return pd.read_csv(ROOT / "datasets" / "penguins.csv")


def test_a_column_transformer_in_front():
    """scikit-learn's own preprocessing may come first; the tool's then sees numbers."""
    table = penguins().dropna()
    X, y = table.drop(columns="species"), table["species"]
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    pre = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["island", "sex"])]
    )
    model = make_pipeline(pre, MLPClassifier((16,), epochs=30, lr=0.01)).fit(X, y)
    assert model.score(X, y) > 0.95
    assert model[-1].n_features_in_ == 4 + 3 + 2


def test_a_dataframe_with_text_columns_and_gaps(capsys, tmp_path):
    table = penguins()
    X, y = table.drop(columns="species"), table["species"]
    assert X["sex"].isna().any() and X["bill_length_mm"].isna().any()
    est = MLPClassifier((16,), epochs=30, lr=0.01, columns={"year": "categorical"}).fit(X, y)
    assert list(est.feature_names_in_) == list(X.columns) and est.n_features_in_ == 7
    assert list(est.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    pred = est.predict(X)
    assert set(pred) <= set(est.classes_) and (pred == y).mean() > 0.95
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], pred)
    assert [c.kind for c in est.model_.spec.columns if c.name in ("island", "year")] == [
        "categorical",
        "categorical",
    ]
    # the model leaves the tool: a weights file the command line and bp.load read
    saved = est.model_.save(tmp_path / "penguins.npz")
    np.testing.assert_array_equal(bp.load(saved).predict(X), pred)
    assert bp.load(saved).spec.target_names == ["species"]  # y's name: eval finds the column
    table.to_csv(tmp_path / "penguins.csv", index=False)
    code, out, err = run_cli(
        capsys, "eval", "-w", saved, "--data", tmp_path / "penguins.csv", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx((pred == y).mean())

    body = MLPRegressor((8,), epochs=30, lr=0.01).fit(
        X.drop(columns="body_mass_g").iloc[:300], X["body_mass_g"].fillna(4200).iloc[:300]
    )
    assert body.predict(X.drop(columns="body_mass_g")).shape == (344,)


PENGUINS_CONFIG = """name: p
seed: 7
data: {path: penguins.csv, target: species, validation: 0, test: 0, impute: median,
       columns: {year: categorical}}
model:
  layers: [{units: 6, activation: tanh, dropout: 0.1}, {units: 3, activation: softmax}]
  init: xavier
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
training: {epochs: 5, batch_size: 8, class_weight: balanced}
"""


def test_the_command_lines_weights_for_the_same_config(capsys, tmp_path, monkeypatch):
    """An estimator's fit is ``backprop train`` of the config its parameters say, bit for bit."""
    monkeypatch.chdir(tmp_path)
    table = penguins()
    table.to_csv("penguins.csv", index=False)
    (tmp_path / "c.yaml").write_text(PENGUINS_CONFIG)
    code, _, err = run_cli(capsys, "train", "c.yaml", "--out", "r", "-q")
    assert code == 0, err
    cli = bp.load(tmp_path / "r" / "weights.npz")
    est = MLPClassifier(
        (6,),
        activation="tanh",
        dropout=0.1,
        init="xavier",
        optimizer={"name": "sgd", "momentum": 0.9},
        lr=0.05,
        epochs=5,
        batch_size=8,
        class_weight="balanced",
        impute="median",
        columns={"year": "categorical"},
        random_state=7,
    ).fit(table.drop(columns="species"), table["species"])
    for a, b in zip(est.model_.net.tensors(), cli.net.tensors(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.model_.mean, cli.mean)
    assert est.model_.spec.columns == cli.spec.columns


def test_the_apis_weights_with_early_stopping_and_the_configs_defaults():
    """None is the config's default (here the validation share early stopping holds out, and
    the seed); the estimator's fit is ``api.train`` of that config."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[rng.random(X.shape) < 0.05] = np.nan  # gaps, imputed
    y = np.nan_to_num(X) @ [3.0, -1.0, 0.5, 0.0] + 100
    weights = rng.uniform(0.5, 2.0, size=200)
    est = MLPRegressor((12,), epochs=200, lr=0.01, early_stopping=3).fit(
        X, y, sample_weight=weights
    )
    config = {
        "data": {"test": 0},
        "model": {"layers": [{"units": 12}, {"units": 1, "activation": "identity"}]},
        "loss": "mse",
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 200, "early_stopping": {"patience": 3}},
    }
    model = bp.train(config, X=X, y=y, sample_weight=weights)
    for a, b in zip(est.model_.net.tensors(), model.net.tensors(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert est.n_iter_ == model.spec.epoch < 200  # stopped early
    assert model.spec.restored_best_epoch is not None
    np.testing.assert_array_equal(est.predict(X), model.predict(X))
    again = MLPRegressor((12,), epochs=200, lr=0.01, early_stopping=3).fit(
        X, y, sample_weight=weights
    )
    np.testing.assert_array_equal(
        again.predict(X), est.predict(X)
    )  # the same seed, unlike sklearn's None


def test_multilabel_targets_train_a_sigmoid_unit_each():
    """An indicator matrix y: the fit is ``api.train`` of the multi-label config (a sigmoid unit
    per label, binary cross-entropy), bit for bit; predict is its 0/1 matrix in y's dtype."""
    from sklearn.datasets import make_multilabel_classification
    from sklearn.dummy import DummyClassifier

    X, Y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=3, random_state=0)
    params = {"epochs": 40, "lr": 0.02, "batch_size": 16, "bias_init": "normal"}
    est = MLPClassifier((16,), **params, bias_init_scale=0.1, dtype="float64").fit(X, Y)
    config = {
        "data": {"validation": 0, "test": 0},
        "model": {
            "layers": [{"units": 16}, {"units": 3, "activation": "sigmoid"}],
            "bias_init": "normal",
            "bias_init_scale": 0.1,
            "dtype": "float64",
        },
        "loss": "binary_cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.02},
        "training": {"epochs": 40, "batch_size": 16},
    }
    model = bp.train(config, X=X, y=Y)
    assert model.spec.multilabel and est.model_.spec.multilabel
    np.testing.assert_array_equal(est.model_.net.params, model.net.params)
    assert list(est.classes_) == [0, 1, 2]
    got = est.predict(X)
    assert got.dtype == Y.dtype and got.shape == Y.shape
    np.testing.assert_array_equal(got, (est.predict_proba(X) >= 0.5).astype(Y.dtype))
    dummy = DummyClassifier(strategy="most_frequent").fit(X, Y)
    assert est.score(X, Y) > dummy.score(X, Y) + 0.3  # subset accuracy
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier((4,), epochs=1, class_weight="balanced").fit(X, Y)


def test_a_dataframe_after_a_fit_on_an_array_is_read_by_position():
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier((4,), epochs=3).fit(X, y)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="fitted without feature names"):
        np.testing.assert_array_equal(est.predict_proba(frame), est.predict_proba(X))


def test_random_state_is_the_seed():
    X, y = load_iris(return_X_y=True)
    fits = [MLPClassifier((4,), epochs=2, random_state=s).fit(X, y) for s in (1, 1, 2)]
    assert fits[0].model_.spec.seed == 1
    np.testing.assert_array_equal(fits[0].model_.net.params, fits[1].model_.net.params)
    assert not np.array_equal(fits[0].model_.net.params, fits[2].model_.net.params)
    drawn = MLPClassifier((4,), epochs=2, random_state=np.random.RandomState(0)).fit(X, y)
    assert drawn.model_.spec.seed == np.random.RandomState(0).randint(np.iinfo(np.int32).max)


def test_bad_parameters_are_value_errors_naming_the_config_key():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="optimizer.lr"):
        MLPClassifier(lr=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="model.layers"):
        MLPClassifier(hidden_layers=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="'mse' is a regression loss"):
        MLPClassifier(loss="mse").fit(X, y)
    with pytest.raises(ValueError, match="'cross_entropy' is a classification loss"):
        MLPRegressor(loss="cross_entropy").fit(X, y)
    with pytest.raises(ValueError, match="data.columns names 'nope'"):
        MLPClassifier(columns={"nope": "categorical"}).fit(X, y)


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn raises ImportError
    monkeypatch.delitem(sys.modules, "backprop_cli.sklearn")  # imported afresh
    monkeypatch.delattr(bp, "sklearn")
    with pytest.raises(ImportError, match=r"pip install 'backprop-cli\[sklearn\]'"):
        from backprop_cli import MLPClassifier  # noqa: F401


def test_the_command_line_never_imports_scikit_learn(tmp_path):
    code = (
        "import sys; from backprop_cli.cli import main; "
        f"code = main(['train', {str(ROOT / 'configs' / 'iris.yaml')!r}, '-q', '--out', "
        f"{str(tmp_path / 'r')!r}]); "
        "print(code, [m for m in ('sklearn', 'backprop_cli.sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
