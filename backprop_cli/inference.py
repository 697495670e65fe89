"""Using a trained network: evaluate it on held-out or new data, predict new rows.

Both need nothing but the weights file: its spec names the data source, the split, the
preprocessing arrays and the class labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import (
    Dataset,
    apply_preprocessing,
    builtin_features,
    encode,
    encode_classes,
    encode_targets,
    file_digest,
    load_builtin,
    load_file,
    read_columns,
    split_rows,
    table_columns,
)
from .data.dataset import name_list
from .data.idx import is_idx
from .data.splitfiles import SPLIT_FILES, load_split_file, split_file_digest_error
from .errors import ConfigError, DataError, DivergenceError
from .nn.losses import get_loss
from .nn.metrics import (
    classification_report,
    confusion_matrix,
    multilabel_report,
    predicted_classes,
    probabilities,
    regression_report,
)
from .nn.network import Network
from .store.weights import ColumnSpec, WeightsSpec, load_weights, network_from_weights
from .system import available_memory, gigabytes

SPLITS = ("test", "val", "train")


@dataclass
class Model:
    path: Path
    spec: WeightsSpec
    net: Network
    mean: np.ndarray
    scale: np.ndarray

    @property
    def task(self) -> str:
        return self.spec.task

    def unscale(self, out: np.ndarray) -> np.ndarray:
        """Regression outputs in the target's units (a network trained on standardized targets)."""
        if self.spec.y_mean is None:
            return out
        return np.asarray(out, np.float64) * np.array(self.spec.y_scale) + np.array(
            self.spec.y_mean
        )


def load_model(path: str | Path) -> Model:
    spec, arrays = load_weights(path)
    return Model(
        Path(path),
        spec,
        network_from_weights(spec, arrays),
        arrays["x_mean"],
        arrays["x_scale"],
    )


def _by_position(model: Model, ds: Dataset, where: str):
    """The features of a source without column names (an .npz's X, a CSV without a header)
    named as the trained columns, by position: the count must match."""
    names = model.spec.input_columns
    have = ds.features.shape[1]
    if have != len(names):
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise DataError(
            f"{where}: {have} feature column(s), but the network takes {len(names)} ({shown})"
        )
    return ds.features.set_axis(names, axis=1)


def columns_of(spec: WeightsSpec) -> list[ColumnSpec]:
    """The spec's fitted columns; a version-1 file's: its numeric features, gaps refused."""
    if spec.columns is not None:
        return spec.columns
    return [ColumnSpec(name=n, kind="numeric", impute="none") for n in spec.feature_names or []]


def model_inputs(model: Model, features, where: str) -> tuple[np.ndarray, list[str]]:
    """The network's input rows for raw feature columns (a DataFrame with the trained columns,
    by name): encoded as training encoded them, then standardized; and the warnings (a
    category training never saw is encoded as all zeros, as scikit-learn's
    handle_unknown="ignore" does)."""
    E, unseen = encode(features, columns_of(model.spec), where)
    warnings = [
        f"{where}: column {name!r}: {count} row(s) with a category not seen in training "
        "(encoded as all zeros)"
        for name, count in unseen.items()
    ]
    names = model.spec.feature_names
    return apply_preprocessing(E, model.mean, model.scale, model.net.dtype, where, names), warnings


def training_data(model: Model, dataset: str | None = None) -> tuple[Dataset, str]:
    """Every row of the data the model was trained on, from its spec (a built-in regenerated
    from the seed, or the file, which must not have changed), or of the built-in ``dataset``."""
    spec, d = model.spec, model.spec.data
    if d is None:
        raise DataError(f"{model.path}: the spec names no training data; pass --data FILE")
    same = dataset is None or dataset == d.dataset
    if dataset is not None or d.dataset:
        name = dataset or d.dataset
        _check_builtin_first(model, name, d.n_samples if same else None)
        ds = load_builtin(name, spec.seed, d.n_samples if same else None, d.noise if same else None)
        return ds, f"dataset {name}"
    path = Path(d.source.get("path") or d.path or "")
    if not path.is_file():
        raise DataError(
            f"{model.path}: the training data {path} is not there any more; pass --data FILE"
        )
    if d.source.get("sha256") and file_digest(path) != d.source["sha256"]:
        raise DataError(
            f"{path}: the file changed since training (sha256 differs), so its split cannot be "
            "rebuilt; pass --data FILE to evaluate on all of its rows"
        )
    return load_file(path, d.target, d.features, d.dropna, sep=d.sep, weight=d.sample_weight), str(
        path
    )


def _check_builtin_first(model: Model, name: str, n_samples: int | None) -> None:
    """What can be known of a built-in before generating it (a spec may claim 10 million
    rows): its features must be the network's, its rows must fit in memory."""
    features = builtin_features(name)
    if features != model.spec.input_columns:
        raise DataError(
            f"dataset {name}: feature columns {name_list(features)}, but the network was "
            f"trained on {name_list(model.spec.input_columns)}; it was not trained on {name}"
        )
    need, have = (n_samples or 0) * (len(features) + 1) * 8 * 3, available_memory()
    if have is not None and need > have:
        raise DataError(
            f"{model.path}: the spec's data.n_samples ({n_samples:,}) needs about "
            f"{gigabytes(need)} to regenerate, more than the {gigabytes(have)} available"
        )


def _split_file(model: Model, split: str):
    """The rows of a split that came from its own file (data.test_path, ...), which must not
    have changed since training."""
    d = model.spec.data
    key = SPLIT_FILES[split]
    recorded = d.source.get(key) or {}
    path = Path(recorded.get("path") or getattr(d, key))
    problem = split_file_digest_error(path, recorded)
    if problem:
        raise DataError(problem)
    ds = load_split_file(d, split, model.spec.input_columns, path)
    return ds.features, ds.targets, f"{path} ({split} split, {len(ds)} rows)"


def _rebuild(model: Model, split: str, dataset: str | None):
    """The rows of ``split`` as at training time, from the spec's data source and seed."""
    spec, d = model.spec, model.spec.data
    if dataset is None and split in SPLIT_FILES and getattr(d, SPLIT_FILES[split], None):
        return _split_file(model, split)
    ds, where = training_data(model, dataset)
    frac = {"test": d.test, "val": d.validation, "train": 1.0}[split]
    if frac == 0:
        key = "test" if split == "test" else "validation"
        raise DataError(
            f"{model.path}: the run held out no {split} rows (data.{key}: 0); "
            "use --split train, or --data FILE"
        )
    classes, indices = split_rows(
        ds, spec.loss, spec.seed, d.validation, d.test, where, model.task, d.split
    )
    if model.task == "classification" and classes != spec.classes:
        raise DataError(
            f"{where}: its classes {classes} differ from the trained ones {spec.classes}"
        )
    idx = indices[split]
    features = ds.features.iloc[idx].reset_index(drop=True)
    return features, ds.targets[idx], f"{where} ({split} split, {len(idx)} rows)"


def evaluate_model(
    model: Model, data: str | None = None, dataset: str | None = None, split: str = "test"
) -> dict:
    """The loss and every metric (nn/metrics.py: accuracy, precision, recall, F1, balanced
    accuracy, ROC-AUC, log loss and a confusion matrix for classification; R^2, MAE, RMSE per
    target and their mean for regression), in the target's own units."""
    spec = model.spec
    if data is not None:
        ds: Dataset = _read_rows(model, Path(data), need_target=True)
        features, targets, where = ds.features, ds.targets, f"{data} ({len(ds)} rows)"
    else:
        features, targets, where = _rebuild(model, split, dataset)
    y = encode_targets(
        targets,
        spec.loss,
        spec.classes,
        where,
        model.net.dtype,
        spec.task,
        spec.sizes[-1],
        spec.multilabel,
        spec.classes,
    )
    Xp, warnings = model_inputs(model, features, where)
    loss = get_loss(spec.loss)
    with np.errstate(all="ignore"):  # an overflow is reported below, as one line
        loss_value, out = model.net.evaluate(Xp, y, loss)
    _require_finite(model, Xp, out, where)
    if model.task == "regression" and spec.y_mean is not None:  # the loss in the target's units
        out = model.unscale(out)
        with np.errstate(all="ignore"):
            loss_value = loss.value(None, out, y.astype(np.float64))
    result = {
        "weights": str(model.path),
        "data": where,
        "rows": len(Xp),
        "loss": loss_value,
        "task": model.task,
    }
    if warnings:
        result["warnings"] = warnings
    if spec.multilabel:
        result |= multilabel_report(y, out, spec.classes)
        result["classes"] = spec.classes
    elif model.task == "classification":
        result |= classification_report(y, out, spec.classes)
        result["classes"] = spec.classes
        result["confusion_matrix"] = confusion_matrix(y, out, len(spec.classes)).tolist()
    else:
        names = spec.target_names or [f"y{j}" for j in range(out.shape[1])]
        result |= regression_report(y, out, names)
    return result


def predict_rows(model: Model, input_path: str, proba: bool = False, keep: list[str] = ()):
    """(A pandas DataFrame of predictions for the rows of ``input_path``, original labels
    restored, after the input columns ``keep`` (ids, names) as they are; the warnings)."""
    frame, warnings = _predictions(model, input_path, proba)
    if keep:
        if Path(input_path).suffix.lower() == ".npz" or is_idx(Path(input_path)):
            raise DataError(
                f"{input_path}: --keep needs a table with named columns, not an .npz or IDX file"
            )
        clash = [c for c in keep if c in frame.columns]
        if clash:
            raise DataError(f"--keep {clash[0]}: the predictions have a column of that name")
        kept = read_columns(input_path, list(dict.fromkeys(keep))).reset_index(drop=True)
        frame = kept.join(frame)
    return frame, warnings


def _predictions(model: Model, input_path: str, proba: bool):
    import pandas as pd

    spec = model.spec
    ds = _read_rows(model, Path(input_path), need_target=False)
    out, warnings = predict_outputs(model, ds.features, str(input_path))
    out = model.unscale(out)
    if spec.multilabel:  # a 0/1 column per label, then (--proba) each label's sigmoid
        frame = pd.DataFrame((out >= 0.5).astype(np.int64), columns=[str(c) for c in spec.classes])
        if proba:
            for j, c in enumerate(spec.classes):
                frame[f"p_{c}"] = out[:, j]
        return frame, warnings
    if model.task == "classification":
        classes = spec.classes
        frame = pd.DataFrame({"prediction": [classes[i] for i in predicted_classes(out)]})
        if proba:
            probs = probabilities(out)
            for j, c in enumerate(classes):
                frame[f"p_{c}"] = probs[:, j]
        return frame, warnings
    names = spec.target_names or [f"y{j}" for j in range(out.shape[1])]
    if len(names) != out.shape[1]:
        names = [f"y{j}" for j in range(out.shape[1])]
    return pd.DataFrame(out, columns=names), warnings


def _read_rows(model: Model, path: Path, need_target: bool) -> Dataset:
    """The rows of a file to evaluate or predict, its features the trained columns taken BY
    NAME (in any order; other columns, a target among them, ignored). By position only where
    names cannot be had: an .npz's X, or a CSV without a header (every header cell a number),
    and only when the count matches."""
    spec = model.spec
    names = spec.input_columns
    target = spec.target if need_target else None
    if path.suffix.lower() == ".npz" or is_idx(path):
        ds = load_file(path, need_target=need_target)
        ds.features = _by_position(model, ds, str(path))
        return ds
    columns = table_columns(path)
    if names and all(n in columns for n in names):
        return load_file(path, target, names, need_target=need_target)
    if not need_target and columns and all(_is_number(c) for c in columns):
        ds = load_file(path, None, None, need_target=False, header=False)
        ds.features = _by_position(model, ds, str(path))
        return ds
    missing = [n for n in names if n not in columns]
    raise DataError(
        f"{path}: no column {missing[0]!r}, a feature the model was trained on "
        f"({len(missing)} of its {len(names)} feature columns missing); columns are matched by "
        f"name: rename or add them (the file has {name_list(columns)})"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# eval's CI gates: option -> (the result's key, "min" or "max", the task it is for or None).
GATES = {
    "--min-accuracy": ("accuracy", "min", "classification"),
    "--min-balanced-accuracy": ("balanced_accuracy", "min", "classification"),
    "--min-precision": ("precision_macro", "min", "classification"),
    "--min-recall": ("recall_macro", "min", "classification"),
    "--min-f1": ("f1_macro", "min", "classification"),
    "--min-auc": ("roc_auc", "min", "classification"),
    "--max-log-loss": ("log_loss", "max", "classification"),
    "--min-r2": ("r2", "min", "regression"),
    "--max-mae": ("mae", "max", "regression"),
    "--max-rmse": ("rmse", "max", "regression"),
    "--max-loss": ("loss", "max", None),
}


def check_gates(task: str, thresholds: dict[str, float | None]) -> None:
    """A gate of the other task (--min-f1 on a regression model) is a ConfigError."""
    for option, limit in thresholds.items():
        gate_task = GATES[option][2]
        if limit is not None and gate_task not in (None, task):
            other = "--min-r2" if gate_task == "classification" else "--min-accuracy"
            raise ConfigError(f"{option}: this is a {task} model; use {other}")


def gate_failures(result: dict, thresholds: dict[str, float | None]) -> list[str]:
    """What an evaluation fails of the thresholds given (option -> value, as in GATES), one
    phrase each; NaN fails every gate; a gate of the other task is a ConfigError."""
    check_gates(result["task"], thresholds)
    failures = []
    for option, limit in thresholds.items():
        if limit is None:
            continue
        key, kind, _ = GATES[option]
        value = result[key]
        ok = value >= limit if kind == "min" else value <= limit  # False for NaN
        if not ok:
            sign = "<" if kind == "min" else ">"
            failures.append(f"{key} {value:.4f} {sign} {option} {limit}")
    return failures


def predict_frame(model: Model, features, where: str) -> tuple[np.ndarray, list[str]]:
    """(the output layer's values for raw feature rows, regression in the target's units;
    the warnings): what predict writes, before the labels are put back."""
    out, warnings = predict_outputs(model, features, where)
    return model.unscale(out), warnings


def predict_outputs(model: Model, features, where: str) -> tuple[np.ndarray, list[str]]:
    """(a^L in float64 for raw feature rows, preprocessed as in training; the warnings)."""
    Xp, warnings = model_inputs(model, features, where)
    with np.errstate(all="ignore"):  # an overflow is reported below, as one line
        out = model.net.predict(Xp)
    _require_finite(model, Xp, out, where)
    return out.astype(np.float64), warnings


def _require_finite(model: Model, Xp: np.ndarray, out: np.ndarray, where: str) -> None:
    """Outputs that overflowed are an error (exit 3) naming the first layer that did, never
    NaN predictions or a NaN loss that a gate could pass."""
    bad = ~np.isfinite(out).all(axis=1)
    if not bad.any():
        return
    row = int(np.argmax(bad))
    with np.errstate(all="ignore"):
        model.net.forward(Xp[row : row + 1])
    layer = model.net.first_nonfinite_layer() or "the output"
    raise DivergenceError(
        f"{where}: the network's output is not finite for {int(bad.sum())} row(s) (first: row "
        f"{row}; it overflows {model.net.dtype} at {layer}); these weights cannot be used on "
        "these rows"
    )


def boundary_data(run_dir: str | Path):
    """(model, X, labels) of a run with two input features: the model from weights.npz and
    every row of its data in the original feature space, labels as class indices (or
    target values for regression)."""
    weights = Path(run_dir) / "weights.npz"
    if not Path(run_dir).is_dir():
        raise DataError(f"{run_dir}: not a directory; expected a run directory")
    if not weights.is_file():
        raise DataError(f"{run_dir}: no weights.npz; not a trained run directory")
    model = load_model(weights)
    spec = model.spec
    if spec.sizes[0] != 2 or any(c.kind != "numeric" for c in columns_of(spec)):
        raise DataError(
            f"{run_dir}: --boundary needs a model of 2 numeric input features (xor, moons, "
            f"circles, spirals, or a 2-column file); this one has {len(spec.input_columns)} "
            f"feature column(s) encoded as {spec.sizes[0]} input(s)"
        )
    if spec.multilabel:
        raise DataError(
            f"{run_dir}: --boundary draws one class per point; this model is multi-label"
        )
    ds, _ = training_data(model)
    if model.task == "classification":
        labels = encode_classes(ds.targets, spec.classes, str(run_dir))
    else:
        labels = np.asarray(ds.targets, dtype=np.float64).reshape(len(ds), -1)[:, 0]
    return model, ds.X, labels


def grid_outputs(model: Model, X: np.ndarray) -> np.ndarray:
    """a^L (float64) for rows of the raw numeric features, in the trained columns' order."""
    import pandas as pd

    out, _ = predict_outputs(model, pd.DataFrame(X, columns=model.spec.input_columns), "the grid")
    return out
