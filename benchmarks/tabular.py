"""Accuracy on public tabular data as it comes (text columns, gaps), side by side with
scikit-learn's MLPClassifier in the usual ColumnTransformer pipeline, mean of 5 seeds.

    python benchmarks/tabular.py [--seeds 5] [--json]

The datasets: Palmer penguins (the built-in: species from island, sex, four measurements,
the year), the raw penguins file (species from island, clutch completion, sex, four
measurements and two blood isotope ratios, with more gaps), and the cars of vega_datasets
(origin: USA, Europe or Japan, from miles per gallon, cylinders, displacement, horsepower,
weight, acceleration and the year as text). pip install scikit-learn vega_datasets
palmerpenguins (the ``bench`` extra) first.

Both engines see the same rows: backprop's split (stratified, 30% held out for test, by
the seed) is the split scikit-learn trains and tests on, and both have one hidden layer of
32 relu units, Glorot-uniform initial weights, Adam at lr 0.01, batches of 16, at most 200
epochs, stopping as MLPClassifier does by default (the training loss not better by 1e-4
for 10 epochs; backprop: early_stopping on train_loss, restore_best false). backprop's
preprocessing is its own (data.columns, data.impute: mean, text gaps a category of their
own); scikit-learn's is SimpleImputer(mean) + StandardScaler for numbers and
OneHotEncoder(handle_unknown="ignore") for text, the same steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HIDDEN = 32
EPOCHS = 200
INIT = "xavier"  # scikit-learn's: U(-r, r), r = sqrt(6 / (fan_in + fan_out))


def datasets() -> dict[str, dict]:
    import palmerpenguins
    import vega_datasets

    raw = Path(palmerpenguins.__file__).parent / "data" / "penguins-raw.csv"
    cars = Path(vega_datasets.__file__).parent / "_data" / "cars.json"
    return {
        "penguins": {"data": {"dataset": "penguins", "columns": {"year": "categorical"}}},
        "penguins-raw": {
            "data": {
                "path": str(raw),
                "target": "Species",
                "features": [
                    "Island",
                    "Clutch Completion",
                    "Culmen Length (mm)",
                    "Culmen Depth (mm)",
                    "Flipper Length (mm)",
                    "Body Mass (g)",
                    "Sex",
                    "Delta 15 N (o/oo)",
                    "Delta 13 C (o/oo)",
                ],  # fmt: skip
            }
        },
        "cars": {
            "data": {
                "path": str(cars),
                "target": "Origin",
                "features": [
                    "Miles_per_Gallon",
                    "Cylinders",
                    "Displacement",
                    "Horsepower",
                    "Weight_in_lbs",
                    "Acceleration",
                    "Year",
                ],  # fmt: skip
            }
        },
    }


def config(spec: dict, seed: int, n_classes: int) -> dict:
    return {
        "name": "tabular",
        "seed": seed,
        "data": {**spec["data"], "validation": 0.0, "test": 0.3},
        "model": {
            "layers": [
                {"units": HIDDEN, "activation": "relu"},
                {"units": n_classes, "activation": "softmax"},
            ],
            "init": INIT,
        },
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.01},
        # scikit-learn's default stopping rule: the training loss has not improved by tol
        # (1e-4) for n_iter_no_change (10) epochs; the last weights are kept.
        "training": {
            "epochs": EPOCHS,
            "batch_size": 16,
            "early_stopping": {
                "monitor": "train_loss",
                "patience": 10,
                "min_delta": 1e-4,
                "restore_best": False,
            },
        },
    }


def run_backprop(spec: dict, seed: int, out: str):
    """(test accuracy, the run's data and split) of a backprop run."""
    from backprop_cli.config import validate_config
    from backprop_cli.data import class_labels, load_dataset
    from backprop_cli.training import Run

    probe = validate_config(config(spec, seed, 2), "tabular")
    ds = load_dataset(probe.data, seed)
    k = len(class_labels(ds.targets, "tabular"))
    cfg = validate_config(config(spec, seed, k), "tabular")
    run = Run(cfg, "tabular", out=out)
    run.start()
    for _ in run.epochs():
        pass
    return run.summary_data["test"]["accuracy"], run.prep


def run_sklearn(prep, seed: int) -> float:
    """Test accuracy of MLPClassifier in a ColumnTransformer pipeline on backprop's split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = prep.dataset.features
    kinds = {c.name: c.kind for c in prep.columns}
    numeric = [c for c in frame if kinds[c] == "numeric"]
    categorical = [c for c in frame if kinds[c] == "categorical"]
    X = frame.astype({c: object for c in categorical})
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(
        pre,
        MLPClassifier(
            hidden_layer_sizes=(HIDDEN,),
            learning_rate_init=0.01,
            batch_size=16,
            max_iter=EPOCHS,
            alpha=0.0,
            random_state=seed,
        ),
    )
    y = prep.dataset.targets
    train, test = prep.indices["train"], prep.indices["test"]
    model.fit(X.iloc[train], y[train])
    return float((model.predict(X.iloc[test]) == y[test]).mean())


def main(argv=None) -> int:
    import warnings

    warnings.filterwarnings("ignore")  # sklearn's ConvergenceWarning at max_iter
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON line per dataset")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in datasets().items():
            ours, theirs = [], []
            for seed in range(args.seeds):
                acc, prep = run_backprop(spec, seed, os.path.join(tmp, f"{name}-{seed}"))
                ours.append(acc)
                theirs.append(run_sklearn(prep, seed))
            rows.append(
                {
                    "dataset": name,
                    "rows": len(prep.dataset),
                    "inputs": prep.n_features,
                    "backprop": statistics.mean(ours),
                    "backprop_sd": statistics.pstdev(ours),
                    "sklearn": statistics.mean(theirs),
                    "sklearn_sd": statistics.pstdev(theirs),
                }
            )
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"test accuracy, mean (sd) of {args.seeds} seeds; {HIDDEN} relu units, Adam 0.01, "
          f"batch 16, {EPOCHS} epochs")  # fmt: skip
    print(f"{'dataset':14} {'rows':>5} {'inputs':>6}  {'backprop':>16}  {'sklearn MLP':>16}")
    for r in rows:
        print(
            f"{r['dataset']:14} {r['rows']:5d} {r['inputs']:6d}  "
            f"{r['backprop']:.4f} ({r['backprop_sd']:.4f})  {r['sklearn']:.4f} ({r['sklearn_sd']:.4f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
