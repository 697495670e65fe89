"""Feature columns (data/columns.py) against scikit-learn's ColumnTransformer: SimpleImputer +
StandardScaler for numeric columns, OneHotEncoder(handle_unknown="ignore") for categorical
ones, fitted on the same training rows and applied to rows with unseen categories and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backprop_cli.config.models import DataConfig
from backprop_cli.data.columns import encode, encoded_names, fit_columns
from backprop_cli.data.prepare import standardization
from backprop_cli.errors import DataError

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the reference (test extra)")
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402


def frames(seed: int = 0, n: int = 200):
    """Training rows and new rows: numbers with gaps, text with gaps, booleans, a year meant as
    categories; the new rows hold categories training never saw."""
    rng = np.random.default_rng(seed)

    def table(m: int, colours, years):
        f = pd.DataFrame(
            {
                "length": rng.normal(40, 5, m).round(1),
                "mass": rng.normal(4000, 600, m).round(0),
                "colour": rng.choice(colours, m, p=None),
                "flag": rng.random(m) < 0.3,
                "year": rng.choice(years, m),
            }
        )
        f.loc[rng.random(m) < 0.1, "length"] = np.nan
        f.loc[rng.random(m) < 0.05, "mass"] = np.nan
        f.loc[rng.random(m) < 0.1, "colour"] = np.nan
        return f

    train = table(n, ["red", "green", "blue", "teal"], [2007, 2008, 2009])
    new = table(60, ["red", "green", "purple"], [2007, 2010])  # purple, 2010: unseen
    return train, new


def ours(train, new, data: DataConfig):
    cols = fit_columns(train, data, "t")
    E_train, _ = encode(train, cols, "t")
    mean, scale = standardization(E_train, cols, True, "t")
    E_new, unseen = encode(new, cols, "t")
    return cols, (E_train - mean) / scale, (E_new - mean) / scale, unseen


def reference(train, new, numeric_strategy: str, categorical_strategy: str, fill=0.0):
    def numeric():
        return make_pipeline(
            SimpleImputer(strategy=numeric_strategy, fill_value=fill), StandardScaler()
        )

    def categorical():
        ohe = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if categorical_strategy == "most_frequent":
            return make_pipeline(SimpleImputer(strategy="most_frequent"), ohe)
        return ohe

    kinds = {"length": numeric, "mass": numeric, "colour": categorical, "flag": categorical,
             "year": categorical}  # fmt: skip
    ct = ColumnTransformer([(c, kinds[c](), [c]) for c in train.columns])
    as_objects = {"colour": object, "flag": object, "year": object}
    ct.fit(train.astype(as_objects))
    return ct.transform(train.astype(as_objects)), ct.transform(new.astype(as_objects))


@pytest.mark.parametrize("numeric", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("categorical", ["category", "most_frequent"])
def test_encoded_matrix_equals_scikit_learns(numeric, categorical):
    train, new = frames()
    data = DataConfig(
        dataset="xor",
        impute=numeric,
        impute_categorical=categorical,
        fill_value=-1.0,
        columns={"year": {"type": "categorical"}},
    )
    cols, got_train, got_new, unseen = ours(train, new, data)
    want_train, want_new = reference(train, new, numeric, categorical, fill=-1.0)
    assert got_train.shape == want_train.shape
    np.testing.assert_allclose(got_train, want_train, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_new, want_new, rtol=1e-12, atol=1e-12)
    assert unseen == {"colour": int((new["colour"] == "purple").sum()),
                      "year": int((new["year"] == 2010).sum())}  # fmt: skip
    assert [c.kind for c in cols] == ["numeric", "numeric", "categorical", "categorical",
                                      "categorical"]  # fmt: skip


def test_missing_indicator_equals_scikit_learns():
    train, new = frames(seed=1)
    data = DataConfig(dataset="xor", missing_indicator=True)
    cols, got_train, got_new, _ = ours(train[["length", "mass"]], new[["length", "mass"]], data)
    ref = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler())
    ct = ColumnTransformer([(c, ref, [c]) for c in ("length", "mass")])
    ct.fit(train[["length", "mass"]])
    np.testing.assert_allclose(got_train, ct.transform(train[["length", "mass"]]), atol=1e-12)
    np.testing.assert_allclose(got_new, ct.transform(new[["length", "mass"]]), atol=1e-12)
    assert encoded_names(cols) == ["length", "length(missing)", "mass", "mass(missing)"]


def test_max_categories_keeps_the_most_frequent_and_folds_the_rest():
    counts = {"a": 50, "b": 30, "c": 10, "d": 6, "e": 4}
    train = pd.DataFrame({"k": [k for k, n in counts.items() for _ in range(n)]})
    new = pd.DataFrame({"k": ["a", "c", "e", "zzz"]})
    data = DataConfig(dataset="xor", columns={"k": {"max_categories": 2}})
    cols, got_train, got_new, unseen = ours(train, new, data)
    assert encoded_names(cols) == ["k=a", "k=b", "k=(other)"]
    ohe = OneHotEncoder(handle_unknown="ignore", max_categories=3, sparse_output=False).fit(train)
    np.testing.assert_array_equal(got_train, ohe.transform(train))
    np.testing.assert_array_equal(got_new[:3], ohe.transform(new[:3]))
    np.testing.assert_array_equal(got_new[3], 0.0)  # never seen: all zeros
    assert unseen == {"k": 1}


def test_an_all_missing_column():
    train = pd.DataFrame({"x": [np.nan] * 5, "c": [None] * 5, "y": [1.0, 2, 3, 4, 5]})
    # constant fill keeps it (as scikit-learn's does); its own category makes one column
    data = DataConfig(dataset="xor", impute="constant", fill_value=3.0)
    cols, got, _, _ = ours(train, train, data)
    assert encoded_names(cols) == ["x", "c=(missing)", "y"]
    np.testing.assert_array_equal(got[:, 0], 0.0)  # constant 3.0, standardized: 0
    np.testing.assert_array_equal(got[:, 1], 1.0)
    with pytest.raises(DataError, match="column 'x' has no value in the training rows"):
        fit_columns(train, DataConfig(dataset="xor", impute="mean"), "t")


def test_a_wide_text_column_needs_max_categories():
    train = pd.DataFrame({"name": [f"n{i}" for i in range(150)]})
    with pytest.raises(DataError) as e:
        fit_columns(train, DataConfig(dataset="xor"), "data.csv")
    assert "column 'name' has 150 distinct values" in str(e.value)
    assert "data.columns.name.max_categories" in str(e.value)
    cols = fit_columns(
        train, DataConfig(dataset="xor", columns={"name": {"max_categories": 10}}), "t"
    )
    assert cols[0].width == 11


# ---------------------------------------------------------------------------- a round trip

ROUND_TRIP = """name: rt
data: {path: train.csv, target: label, validation: 0.2, test: 0.0,
       columns: {year: categorical, mass: {impute: median}}}
model:
  layers: [{units: 6, activation: tanh}, {units: 2, activation: softmax}]
  dtype: float64
optimizer: {name: adam, lr: 0.05}
training: {epochs: 5, batch_size: 16}
"""


def test_eval_and_predict_apply_the_training_preprocessing(capsys, tmp_path):
    """Train on a CSV with text, gaps and a year; predict on a shuffled-column copy with unseen
    categories and gaps: the probabilities equal a forward pass over the columns encoded by
    hand from the spec's JSON (fill values, categories) and the stored means and scales."""
    import json

    from .conftest import run_cli

    train, new = frames(seed=3)
    rng = np.random.default_rng(3)
    train["label"] = np.where(
        train["length"].fillna(40) + rng.normal(0, 3, len(train)) > 40, "yes", "no"
    )
    train.to_csv(tmp_path / "train.csv", index=False)
    new = new[["year", "flag", "colour", "mass", "length"]].assign(id=range(len(new)))
    new.to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "c.yaml").write_text(ROUND_TRIP)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    code, out, err = run_cli(
        capsys,
        "predict",
        "-w",
        tmp_path / "r" / "weights.npz",
        "--data",
        tmp_path / "new.csv",
        "--proba",
    )
    assert code == 0, err
    assert "column 'colour'" in err and "column 'year'" in err  # unseen categories: a warning each
    got = pd.read_csv(__import__("io").StringIO(out))[["p_no", "p_yes"]].to_numpy()

    with np.load(tmp_path / "r" / "weights.npz") as z:
        spec = json.loads(str(z["spec"]))
        arrays = {k: z[k] for k in z.files if k != "spec"}
    columns = []  # by hand, from the spec's JSON
    for c in spec["columns"]:
        v = new[c["name"]]
        if c["kind"] == "numeric":
            columns.append(v.astype(float).fillna(c["fill"]).to_numpy())
            continue
        for cat in c["categories"]:
            columns.append((v == cat).to_numpy(dtype=float))
        if c["missing"]:
            columns.append(v.isna().to_numpy(dtype=float))
    X = (np.column_stack(columns) - arrays["x_mean"]) / arrays["x_scale"]
    h = np.tanh(X @ arrays["W0"] + arrays["b0"])
    z = h @ arrays["W1"] + arrays["b1"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, p, rtol=1e-6)  # the CSV holds 8 significant digits
    assert spec["columns"][1]["impute"] == "median"
