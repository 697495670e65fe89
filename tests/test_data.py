"""Datasets: generated and CSV built-ins, file loaders, splits, standardization, encoding.

Expected values come from the generating formulas, from counts worked out by hand, or
from the published sizes of the real datasets; never from an earlier run of the code.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.config.models import DataConfig
from backprop_cli.data import (
    Dataset,
    encode_classes,
    load_builtin,
    load_file,
    prepare,
    split_indices,
    streams,
)
from backprop_cli.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


def friedman(X: np.ndarray) -> np.ndarray:
    return (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
    )


# ---------------------------------------------------------------------------- split_indices


@pytest.mark.parametrize(
    ("n", "validation", "test", "sizes"),
    [
        (100, 0.15, 0.15, (70, 15, 15)),
        (20, 0.25, 0.1, (13, 5, 2)),
        (10, 0.0, 0.3, (7, 0, 3)),
        (50, 0.0, 0.0, (50, 0, 0)),
    ],
)
def test_split_sizes_disjoint_and_cover(n, validation, test, sizes):
    parts = split_indices(n, None, validation, test, np.random.default_rng(0))
    assert tuple(len(p) for p in parts) == sizes
    train, val, tst = (set(p.tolist()) for p in parts)
    assert not train & val and not train & tst and not val & tst
    assert train | val | tst == set(range(n))
    for p in parts:
        assert p.dtype == np.int64


def test_split_stratified_shares():
    sizes = {0: 50, 1: 30, 2: 20}
    strata = np.repeat(list(sizes), list(sizes.values()))
    strata = np.random.default_rng(5).permutation(strata)
    validation, test = 0.2, 0.1
    train, val, tst = split_indices(len(strata), strata, validation, test, np.random.default_rng(1))
    assert sorted(np.concatenate([train, val, tst]).tolist()) == list(range(len(strata)))
    for c, size in sizes.items():
        n_val = int((strata[val] == c).sum())
        n_test = int((strata[tst] == c).sum())
        n_train = int((strata[train] == c).sum())
        assert abs(n_val - validation * size) <= 1
        assert abs(n_test - test * size) <= 1
        assert abs(n_train - (1 - validation - test) * size) <= 1
        assert n_train + n_val + n_test == size


def test_split_stratified_uneven_classes():
    # 7 rows of class 0 and 13 of class 1; 30% test -> 2.1 and 3.9 expected
    strata = np.array([0] * 7 + [1] * 13)
    train, val, tst = split_indices(20, strata, 0.0, 0.3, np.random.default_rng(2))
    assert len(val) == 0
    assert abs((strata[tst] == 0).sum() - 2.1) <= 1
    assert abs((strata[tst] == 1).sum() - 3.9) <= 1


def test_split_seeded():
    def split(seed):
        return split_indices(200, None, 0.15, 0.15, np.random.default_rng(seed))

    a, b, c = split(3), split(3), split(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


# ---------------------------------------------------------------------------- streams


def test_streams_deterministic_and_independent():
    names = ("data", "split", "init", "shuffle", "dropout")
    a, b, other = streams(11), streams(11), streams(12)
    assert set(a) == set(names)
    draws_a = {n: a[n].integers(0, 2**62, 8) for n in names}
    draws_b = {n: b[n].integers(0, 2**62, 8) for n in names}
    draws_o = {n: other[n].integers(0, 2**62, 8) for n in names}
    for n in names:
        np.testing.assert_array_equal(draws_a[n], draws_b[n])
        assert not np.array_equal(draws_a[n], draws_o[n])
    for i, n in enumerate(names):
        for m in names[i + 1 :]:
            assert not np.array_equal(draws_a[n], draws_a[m]), (n, m)


# ---------------------------------------------------------------------------- generated


def test_xor_is_the_four_corners():
    ds = load_builtin("xor", 0)
    np.testing.assert_array_equal(ds.X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.targets, [0, 1, 1, 0])
    assert ds.X.dtype == np.float64
    np.testing.assert_array_equal(load_builtin("xor", 123).X, ds.X)


def test_xor_more_samples_are_noisy_corners():
    ds = load_builtin("xor", 0, n_samples=8)
    assert ds.X.shape == (8, 2)
    np.testing.assert_array_equal(ds.targets, [0, 1, 1, 0, 0, 1, 1, 0])
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 2, dtype=float)
    assert np.abs(ds.X - corners).max() < 0.6
    assert not np.array_equal(ds.X, corners)


@pytest.mark.parametrize(
    ("name", "n_samples", "n_rows", "counts"),
    [
        ("moons", None, 500, {0: 250, 1: 250}),
        ("moons", 101, 101, {0: 50, 1: 51}),
        ("circles", None, 500, {0: 250, 1: 250}),
        ("circles", 101, 101, {0: 50, 1: 51}),
        ("spirals", None, 600, {0: 200, 1: 200, 2: 200}),
        ("spirals", 100, 100, {0: 34, 1: 33, 2: 33}),
        ("xor", None, 4, {0: 2, 1: 2}),
    ],
)
def test_generated_shapes_and_class_counts(name, n_samples, n_rows, counts):
    ds = load_builtin(name, 0, n_samples=n_samples)
    assert ds.X.shape == (n_rows, 2)
    assert ds.targets.shape == (n_rows,)
    assert dict(Counter(ds.targets.tolist())) == counts
    assert np.isfinite(ds.X).all()


@pytest.mark.parametrize("n_samples", [None, 300])
def test_friedman_shape(n_samples):
    ds = load_builtin("friedman", 0, n_samples=n_samples)
    n = n_samples or 2000
    assert ds.X.shape == (n, 10)
    assert ds.targets.shape == (n, 1)
    assert ds.X.min() >= 0 and ds.X.max() < 1


@pytest.mark.parametrize("name", ["moons", "circles", "spirals", "friedman"])
def test_generated_seeded(name):
    a, b, c = load_builtin(name, 7), load_builtin(name, 7), load_builtin(name, 8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.X, c.X)


def test_moons_noise_free_geometry():
    ds = load_builtin("moons", 0, n_samples=200, noise=0.0)
    x, y = ds.X[:, 0], ds.X[:, 1]
    upper, lower = ds.targets == 0, ds.targets == 1
    # class 0: the upper unit half circle; class 1: the lower one centred on (1, 0.5)
    np.testing.assert_allclose(x[upper] ** 2 + y[upper] ** 2, 1.0, atol=1e-12)
    assert (y[upper] >= -1e-12).all()
    np.testing.assert_allclose((x[lower] - 1) ** 2 + (y[lower] - 0.5) ** 2, 1.0, atol=1e-12)
    assert (y[lower] <= 0.5 + 1e-12).all()


def test_circles_noise_free_radii():
    ds = load_builtin("circles", 0, n_samples=100, noise=0.0)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    np.testing.assert_allclose(r[ds.targets == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(r[ds.targets == 1], 0.5, atol=1e-12)


def test_spirals_radius_grows_evenly_per_arm():
    ds = load_builtin("spirals", 3, n_samples=90)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    for c in range(3):
        np.testing.assert_allclose(np.sort(r[ds.targets == c]), np.linspace(0, 1, 30), atol=1e-12)


def test_friedman_noise_free_is_the_formula():
    ds = load_builtin("friedman", 0, n_samples=500, noise=0.0)
    np.testing.assert_allclose(ds.targets[:, 0], friedman(ds.X), rtol=1e-12, atol=1e-12)


def test_friedman_default_noise_is_unit_gaussian():
    ds = load_builtin("friedman", 1)
    residual = ds.targets[:, 0] - friedman(ds.X)
    # n = 2000: the sample mean has sd 0.022, the sample sd has sd 0.016
    assert abs(residual.mean()) < 0.1
    assert 0.9 < residual.std() < 1.1
    assert np.abs(residual).max() < 5


def test_unknown_builtin():
    with pytest.raises(DataError) as excinfo:
        load_builtin("moon", 0)
    msg = one_line(excinfo)
    assert "'moon'" in msg and "moons" in msg


# ---------------------------------------------------------------------------- CSV built-ins


@pytest.mark.parametrize(
    ("name", "shape", "counts"),
    [
        ("iris", (150, 4), {"setosa": 50, "versicolor": 50, "virginica": 50}),
        (
            "digits",
            (1797, 64),
            {0: 178, 1: 182, 2: 177, 3: 183, 4: 181, 5: 182, 6: 181, 7: 179, 8: 174, 9: 180},
        ),
        ("wine", (178, 13), {0: 59, 1: 71, 2: 48}),
        ("breast_cancer", (569, 30), {"benign": 357, "malignant": 212}),
    ],
)
def test_csv_builtins_from_another_directory(name, shape, counts):
    assert Path.cwd().resolve() != ROOT
    ds = load_builtin(name, 0)
    assert ds.X.shape == shape
    assert ds.X.dtype == np.float64
    assert np.isfinite(ds.X).all()
    assert len(ds.feature_names) == shape[1]
    assert dict(Counter(ds.targets.tolist())) == counts


def test_iris_first_row():
    # Fisher's iris, row 1: 5.1 3.5 1.4 0.2 setosa
    ds = load_builtin("iris", 0)
    np.testing.assert_array_equal(ds.X[0], [5.1, 3.5, 1.4, 0.2])
    assert ds.targets[0] == "setosa"


# ---------------------------------------------------------------------------- prepare


def table(X, targets, names, target_names, source=None) -> Dataset:
    """A Dataset of numeric columns ``names`` (the old Dataset(X, ...) call)."""
    import pandas as pd

    return Dataset(
        pd.DataFrame(np.asarray(X, dtype=np.float64), columns=names),
        targets,
        target_names,
        source or {},
    )


def prepare_old(
    ds,
    loss,
    seed,
    validation,
    test,
    standardize,
    dtype=np.float32,
    where="data",
    scale_target=False,
):
    """prepare() with the data section's settings as arguments."""
    data = DataConfig(dataset="xor", validation=validation, test=test, standardize=standardize)
    return prepare(ds, data, loss, seed, dtype=dtype, where=where, scale_target=scale_target)


def make_dataset(n: int = 240, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = np.c_[
        rng.normal(5.0, 2.0, n),
        rng.normal(-3.0, 0.5, n),
        rng.uniform(100, 200, n),
        np.full(n, 7.0),  # constant column
    ]
    labels = np.array(["b", "c", "a"] * (n // 3), dtype=object)
    return table(X, labels, ["p", "q", "r", "const"], ["label"], {})


def test_prepare_standardizes_on_train_rows_only():
    ds = make_dataset()
    p = prepare_old(ds, "cross_entropy", 0, 0.2, 0.2, True, dtype=np.float64)
    train, val, tst = p.indices["train"], p.indices["val"], p.indices["test"]
    assert sorted(np.concatenate([train, val, tst]).tolist()) == list(range(len(ds.X)))
    mu = ds.X[train].mean(axis=0)
    sd = np.sqrt(((ds.X[train] - mu) ** 2).mean(axis=0))
    sd_safe = np.where(sd == 0, 1.0, sd)
    np.testing.assert_allclose(p.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(p.scale, sd_safe, rtol=1e-12)
    assert not np.allclose(p.mean, ds.X.mean(axis=0))  # not fitted on every row
    Xt = p.X["train"]
    np.testing.assert_allclose(Xt[:, :3].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xt[:, :3].std(axis=0), 1.0, rtol=1e-12)
    for name, idx in (("val", val), ("test", tst)):
        np.testing.assert_allclose(p.X[name], (ds.X[idx] - mu) / sd_safe, rtol=1e-12)


def test_prepare_constant_column():
    p = prepare_old(make_dataset(), "cross_entropy", 0, 0.2, 0.2, True, dtype=np.float64)
    assert p.scale[3] == 1.0
    for X in p.X.values():
        assert np.isfinite(X).all()
        np.testing.assert_array_equal(X[:, 3], 0.0)


def test_prepare_without_standardize_keeps_values():
    ds = make_dataset()
    p = prepare_old(ds, "cross_entropy", 0, 0.2, 0.2, False, dtype=np.float64)
    np.testing.assert_array_equal(p.mean, 0.0)
    np.testing.assert_array_equal(p.scale, 1.0)
    np.testing.assert_array_equal(p.X["train"], ds.X[p.indices["train"]])


def test_prepare_cross_entropy_targets():
    ds = make_dataset()
    p = prepare_old(ds, "cross_entropy", 0, 0.2, 0.2, True)
    assert p.task == "classification"
    assert p.classes == ["a", "b", "c"]
    assert p.n_outputs == 3 and p.n_features == 4
    lookup = {"a": 0, "b": 1, "c": 2}
    for name in ("train", "val", "test"):
        y = p.y[name]
        assert y.ndim == 1 and np.issubdtype(y.dtype, np.integer)
        expected = [lookup[t] for t in ds.targets[p.indices[name]]]
        np.testing.assert_array_equal(y, expected)
    # stratified: 80 rows per class, 20% validation and test -> 16 each
    for c in range(3):
        assert abs((p.y["val"] == c).sum() - 16) <= 1
        assert abs((p.y["test"] == c).sum() - 16) <= 1


def test_prepare_binary_cross_entropy_targets():
    rng = np.random.default_rng(1)
    labels = np.array(["yes", "no", "no", "yes", "no"] * 20, dtype=object)
    ds = table(rng.normal(size=(100, 2)), labels, ["a", "b"], ["t"], {})
    p = prepare_old(ds, "binary_cross_entropy", 0, 0.2, 0.2, True, dtype=np.float64)
    assert p.classes == ["no", "yes"]
    for name in ("train", "val", "test"):
        y = p.y[name]
        assert y.shape == (len(p.indices[name]), 1)
        assert y.dtype == np.float64
        expected = (labels[p.indices[name]] == "yes").astype(float)[:, None]
        np.testing.assert_array_equal(y, expected)


def test_prepare_binary_numeric_labels():
    ds = table(np.arange(40.0).reshape(20, 2), np.array([3, 7] * 10), ["a", "b"], ["t"], {})
    p = prepare_old(ds, "binary_cross_entropy", 0, 0.0, 0.2, True, dtype=np.float32)
    assert p.classes == [3, 7]
    expected = (ds.targets[p.indices["train"]] == 7).astype(np.float32)[:, None]
    np.testing.assert_array_equal(p.y["train"], expected)
    assert p.y["train"].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepare_regression_targets_and_dtype(dtype):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    t1 = X @ np.array([1.0, -2.0, 0.5])
    ds1 = table(X, t1, ["a", "b", "c"], ["y"], {})
    p = prepare_old(ds1, "mse", 0, 0.2, 0.2, True, dtype=dtype, scale_target=True)
    assert p.task == "regression" and p.classes is None
    for name in ("train", "val", "test"):
        assert p.X[name].dtype == dtype
        assert p.y[name].dtype == dtype
        assert p.y[name].shape == (len(p.indices[name]), 1)
        np.testing.assert_allclose(p.unscale(p.y[name])[:, 0], t1[p.indices[name]], rtol=1e-5)
    t2 = np.c_[t1, -t1]
    p2 = prepare_old(
        table(X, t2, ["a", "b", "c"], ["y1", "y2"], {}),
        "mse",
        0,
        0.2,
        0.2,
        True,
        dtype,
        scale_target=True,
    )
    assert p2.n_outputs == 2
    np.testing.assert_allclose(p2.unscale(p2.y["train"]), t2[p2.indices["train"]], rtol=1e-5)
    # standardized on the training rows, per column, as scikit-learn's StandardScaler
    train = t2[p2.indices["train"]]
    np.testing.assert_allclose(p2.y_mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p2.y_scale, train.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p2.y["train"].mean(axis=0), 0.0, atol=1e-5)


def test_prepare_same_seed_same_split():
    ds = make_dataset()
    a = prepare_old(ds, "cross_entropy", 4, 0.2, 0.2, True)
    b = prepare_old(ds, "cross_entropy", 4, 0.2, 0.2, True)
    c = prepare_old(ds, "cross_entropy", 5, 0.2, 0.2, True)
    np.testing.assert_array_equal(a.indices["test"], b.indices["test"])
    assert not np.array_equal(a.indices["test"], c.indices["test"])


def test_prepare_single_class():
    ds = table(np.zeros((10, 2)), np.array(["only"] * 10, dtype=object), ["a", "b"], ["t"], {})
    with pytest.raises(DataError) as excinfo:
        prepare_old(ds, "cross_entropy", 0, 0.2, 0.2, True, where="my.csv")
    msg = one_line(excinfo)
    assert msg.startswith("my.csv: ") and "single class" in msg and "'only'" in msg


def test_prepare_bce_with_three_classes():
    ds = make_dataset()
    with pytest.raises(DataError) as excinfo:
        prepare_old(ds, "binary_cross_entropy", 0, 0.2, 0.2, True)
    msg = one_line(excinfo)
    assert "binary_cross_entropy" in msg and "3" in msg


def test_prepare_too_few_rows():
    # 2 rows per class: 15% of 2 rounds to 0, so nothing is left for validation
    ds = table(np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]), ["a", "b"], ["t"], {})
    with pytest.raises(DataError) as excinfo:
        prepare_old(ds, "cross_entropy", 0, 0.15, 0.15, True)
    msg = one_line(excinfo)
    assert "4 rows" in msg and "validation" in msg


def test_encode_classes_unknown_label():
    np.testing.assert_array_equal(
        encode_classes(np.array(["b", "a", "b"], dtype=object), ["a", "b"], "w"), [1, 0, 1]
    )
    with pytest.raises(DataError) as excinfo:
        encode_classes(np.array(["a", "zebra"], dtype=object), ["a", "b"], "new.csv")
    msg = one_line(excinfo)
    assert msg.startswith("new.csv: ") and "'zebra'" in msg and "a, b" in msg


def test_encode_classes_unknown_numeric_label():
    with pytest.raises(DataError) as excinfo:
        encode_classes(np.array([0, 1, 9]), [0, 1], "w")
    assert "label 9" in one_line(excinfo)


# ---------------------------------------------------------------------------- files


def test_csv_with_string_labels(tmp_path):
    p = tmp_path / "pets.csv"
    p.write_text("weight,height,kind\n4.5,30,cat\n30,60,dog\n5,28,cat\n")
    ds = load_file(p, target="kind")
    np.testing.assert_array_equal(ds.X, [[4.5, 30], [30, 60], [5, 28]])
    assert ds.X.dtype == np.float64
    assert ds.targets.tolist() == ["cat", "dog", "cat"]
    assert ds.feature_names == ["weight", "height"]
    assert ds.target_names == ["kind"]
    assert ds.source["path"] == str(p.resolve())
    tiled = table(np.tile(ds.X, (4, 1)), np.tile(ds.targets, 4), ["weight", "height"], [], {})
    p2 = prepare_old(tiled, "cross_entropy", 0, 0.0, 0.0, False)
    assert p2.classes == ["cat", "dog"]


def test_source_records_sha256(tmp_path):
    import hashlib

    p = tmp_path / "d.csv"
    p.write_text("a,y\n1,0\n2,1\n")
    ds = load_file(p, target="y")
    assert ds.source["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_tsv(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("a\tb\ty\n1\t2\t0.5\n3\t4\t1.5\n")
    ds = load_file(p, target="y")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ds.targets, [0.5, 1.5])


def test_npz(tmp_path):
    p = tmp_path / "d.npz"
    X = np.arange(12.0).reshape(4, 3)
    np.savez(p, X=X, y=np.array([0, 1, 1, 0]))
    ds = load_file(p)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.targets, [0, 1, 1, 0])
    assert ds.feature_names == ["x0", "x1", "x2"]


def test_features_subset_in_given_order(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,c,id,y\n1,2,3,100,0\n4,5,6,101,1\n")
    ds = load_file(p, target="y", features=["c", "a"])
    np.testing.assert_array_equal(ds.X, [[3, 1], [6, 4]])
    assert ds.feature_names == ["c", "a"]


def test_target_list_for_regression(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y1,y2\n1,2,3.5,4\n5,6,7,8.25\n")
    ds = load_file(p, target=["y1", "y2"])
    np.testing.assert_array_equal(ds.X, [[1, 2], [5, 6]])
    np.testing.assert_array_equal(ds.targets, [[3.5, 4], [7, 8.25]])
    assert ds.target_names == ["y1", "y2"]


def _data_error(path, **kw) -> str:
    with pytest.raises(DataError) as excinfo:
        load_file(path, **kw)
    msg = one_line(excinfo)
    assert msg.startswith(f"{path}: "), msg
    return msg


def test_missing_file(tmp_path):
    assert "not found" in _data_error(tmp_path / "nope.csv", target="y")


def test_directory(tmp_path):
    d = tmp_path / "dir.csv"
    d.mkdir()
    assert "directory" in _data_error(d, target="y")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "book.xlsx"
    p.write_bytes(b"PK\x03\x04")
    assert "'.xlsx'" in _data_error(p, target="y")


def test_empty_file(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    assert "empty" in _data_error(p, target="y")


def test_header_only(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,y\n")
    msg = _data_error(p, target="y")
    assert "no data rows" in msg and "a, b, y" in msg


def test_missing_target_lists_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("alpha,beta,label\n1,2,x\n")
    msg = _data_error(p, target="lable")
    assert "'lable'" in msg and "alpha, beta, label" in msg


def test_missing_feature_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("alpha,beta,label\n1,2,x\n")
    msg = _data_error(p, target="label", features=["alpha", "gamma"])
    assert "'gamma'" in msg and "alpha, beta, label" in msg


def test_text_features_are_read_as_they_are(tmp_path):
    """Text columns are kept for the encoding (data/columns.py), not refused at reading."""
    p = tmp_path / "d.csv"
    p.write_text("size,colour,label\n1,red,a\n2,blue,b\n")
    ds = load_file(p, target="label")
    assert ds.feature_names == ["size", "colour"]
    assert ds.features["colour"].tolist() == ["red", "blue"]


NAN_CSV = "a,b,y\n1,2,0\n3,,1\n5,6,0\n7,,1\n9,10,1\n"


def test_empty_cells_are_read_as_gaps(tmp_path):
    """Gaps are kept for the encoding to fill (data.impute) or refuse (impute: none)."""
    p = tmp_path / "n.csv"
    p.write_text(NAN_CSV)
    ds = load_file(p, target="y")
    assert ds.features["b"].isna().sum() == 2 and len(ds) == 5


def test_dropna_removes_those_rows(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text(NAN_CSV)
    ds = load_file(p, target="y", dropna=True)
    np.testing.assert_array_equal(ds.X, [[1, 2], [5, 6], [9, 10]])
    np.testing.assert_array_equal(ds.targets, [0, 0, 1])


def test_empty_target_cell(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,y\n1,x\n2,\n3,z\n")
    msg = _data_error(p, target="y")
    assert "'y'" in msg and "1 empty" in msg
    assert load_file(p, target="y", dropna=True).targets.tolist() == ["x", "z"]


def test_npz_without_y(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.zeros((3, 2)))
    msg = _data_error(p)
    assert "'y'" in msg and "found X" in msg


def test_npz_object_array_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    p = tmp_path / "evil.npz"
    X = np.empty((1, 1), dtype=object)
    X[0, 0] = Payload()
    np.savez(p, X=X, y=np.array([0]), allow_pickle=True)
    msg = _data_error(p)
    assert "object" in msg.lower()
    assert not marker.exists()
    # the payload is live: unpickling it would have run it
    with np.load(p, allow_pickle=True) as z:
        z["X"]
    assert marker.is_dir()


def test_npz_rows_must_match(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.zeros((3, 2)), y=np.zeros(4))
    assert "one row per row of X (3)" in _data_error(p)


@pytest.mark.parametrize(
    ("target", "features"),
    [("b", ["a", "b"]), ("y", ["a", "a"])],
    ids=["target-in-features", "duplicate-feature"],
)
def test_feature_named_twice_is_reported_as_such(tmp_path, target, features):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,4,1\n")
    msg = _data_error(p, target=target, features=features)
    assert "not numeric" not in msg, msg
    assert ("is the target" in msg) if target == "b" else ("twice" in msg), msg


def test_every_dataset_name_the_config_accepts_is_a_builtin():
    """The config owns the names (it validates data.dataset); data owns the loaders: they agree."""
    from backprop_cli.config import BUILTIN_DATASETS
    from backprop_cli.data import describe_builtins

    assert [d["name"] for d in describe_builtins()] == list(BUILTIN_DATASETS)
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        load_builtin("mnist", 0)
