"""Every metric (nn/metrics.py) against sklearn.metrics on random predictions."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_cli.nn import metrics

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference (test extra)")


def softmax_rows(rng, n: int, k: int) -> np.ndarray:
    z = rng.normal(0, 2, (n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_sklearns(k, seed):
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.integers(0, k, n)
    out = softmax_rows(rng, n, k)
    if seed == 2:  # ties in the scores: AUC counts them half
        out = np.round(out, 1)
        out /= out.sum(axis=1, keepdims=True)
    pred = out.argmax(axis=1)
    r = metrics.classification_report(y, out, list(range(k)))
    labels = list(range(k))
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert r["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, pred))
    for name, fn in (
        ("precision", sk.precision_score),
        ("recall", sk.recall_score),
        ("f1", sk.f1_score),
    ):
        per = fn(y, pred, labels=labels, average=None, zero_division=0)
        macro = fn(y, pred, labels=labels, average="macro", zero_division=0)
        assert r[f"{name}_macro"] == pytest.approx(macro, rel=1e-12)
        assert [r["per_class"][str(c)][name] for c in labels] == pytest.approx(per, rel=1e-12)
    auc = sk.roc_auc_score(y, out[:, 1]) if k == 2 else sk.roc_auc_score(y, out, multi_class="ovr")
    assert r["roc_auc"] == pytest.approx(auc, rel=1e-12)
    assert r["log_loss"] == pytest.approx(sk.log_loss(y, out, labels=labels), rel=1e-9)


def test_one_sigmoid_unit_is_binary():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (150, 1)).astype(float)  # BCE's (n, 1) targets
    p = rng.random((150, 1))
    r = metrics.classification_report(y, p, ["no", "yes"])
    truth = y[:, 0].astype(int)
    assert r["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, p[:, 0]), rel=1e-12)
    assert r["log_loss"] == pytest.approx(sk.log_loss(truth, p[:, 0]), rel=1e-9)
    assert r["f1_macro"] == pytest.approx(
        sk.f1_score(truth, (p[:, 0] >= 0.5).astype(int), average="macro"), rel=1e-12
    )


def test_a_class_that_is_never_predicted_or_absent():
    y = np.array([0, 0, 1, 1, 1])
    out = np.eye(3)[[0, 0, 0, 1, 1]]  # class 2 never true, never predicted; class 1 missed once
    r = metrics.classification_report(y, out, [0, 1, 2])
    assert r["per_class"]["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "rows": 0}
    pred = out.argmax(axis=1)
    assert r["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert np.isnan(r["roc_auc"])  # class 2 has no rows: undefined


@pytest.mark.parametrize("k", [1, 3])
def test_regression_metrics_equal_sklearns(k):
    rng = np.random.default_rng(k)
    y = rng.normal(0, 3, (120, k))
    pred = y + rng.normal(0, 1, (120, k))
    r = metrics.regression_report(y, pred, [f"t{j}" for j in range(k)])
    assert r["r2"] == pytest.approx(sk.r2_score(y, pred), rel=1e-12)
    assert r["mae"] == pytest.approx(sk.mean_absolute_error(y, pred), rel=1e-12)
    rmse = np.sqrt(sk.mean_squared_error(y, pred, multioutput="raw_values"))
    assert r["rmse"] == pytest.approx(rmse.mean(), rel=1e-12)
    per = [r["per_target"][f"t{j}"] for j in range(k)]
    assert [p["r2"] for p in per] == pytest.approx(sk.r2_score(y, pred, multioutput="raw_values"))
    assert [p["mae"] for p in per] == pytest.approx(
        sk.mean_absolute_error(y, pred, multioutput="raw_values")
    )
    assert [p["rmse"] for p in per] == pytest.approx(rmse)
