"""The Python API: the same engine as the command line, on data in memory.

    import backprop_cli as bp

    model = bp.train({"model": {"layers": [{"units": 32}, {"units": 3, "activation": "softmax"}]},
                      "training": {"epochs": 50}}, X=frame, y=labels)
    model.predict(new_frame)          # class labels (or values, in the target's units)
    model.predict_proba(new_frame)    # (n, classes) probabilities
    model.save("model.npz")           # a weights file `backprop eval` and `predict` read
    bp.load("runs/iris/weights.npz")  # any run's weights, for predicting in Python

A config is a mapping (or a YAML file's path) with the keys of a config file; ``data`` may
name a file or a built-in as in a file, or be left out when ``X`` and ``y`` are given (its
settings, such as ``columns`` and ``impute``, still apply). Training in memory writes
nothing; ``train_run`` trains as ``backprop train`` does, writing a run directory. For the
same config, seed and rows, the weights are the command line's, bit for bit.

scikit-learn estimators over this API: ``backprop_cli.sklearn`` (the ``sklearn`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, load_config, validate_config
from .data import Dataset, checked_weights, prepare
from .errors import ConfigError, DataError
from .inference import Model, load_model, predict_frame
from .nn.metrics import predicted_classes, probabilities
from .store.weights import save_weights
from .training import Run, build_optimizer, setup
from .training.run import make_trainer, weights_spec

IN_MEMORY = "(in memory)"  # data.path of a config trained on data given in memory

__all__ = ["IN_MEMORY", "Trained", "config_of", "load", "train", "train_run"]


def config_of(
    config: Config | Mapping[str, Any] | str | Path | list[str | Path], in_memory: bool = False
) -> Config:
    """A validated Config from a Config, a mapping of config keys, a YAML file's path, or a
    list of paths (composed as ``backprop train a.yaml b.yaml`` composes them); ``in_memory``:
    the data comes from arrays, so the data section needs no source."""
    if isinstance(config, Config):
        return config
    if isinstance(config, str | Path | list | tuple):
        return load_config(config)
    data = {**config}
    section = dict(data.get("data") or {})
    if in_memory:
        section.pop("dataset", None)
        section["path"] = IN_MEMORY
    data["data"] = section
    return validate_config(data, "config")


def frame_of(X, names: list[str] | None = None):
    """X as a pandas DataFrame of raw feature columns (an array's columns named x0, x1, ...)."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        return frame
    array = np.asarray(X)
    if array.ndim != 2:
        raise DataError(f"X: expected a 2-D table of rows (got shape {array.shape})")
    return pd.DataFrame(array, columns=names or [f"x{i}" for i in range(array.shape[1])])


def dataset_of(X, y, sample_weight=None) -> Dataset:
    """A Dataset of rows given in memory: features X (a DataFrame or an array), targets y,
    and each row's weight in the loss (``sample_weight`` (n,), or None: every row alike)."""
    import pandas as pd

    features = frame_of(X)
    if isinstance(y, pd.DataFrame):
        names, targets = [str(c) for c in y.columns], y.to_numpy()
        targets = targets[:, 0] if targets.shape[1] == 1 else targets
    elif isinstance(y, pd.Series):
        names, targets = [str(y.name) if y.name is not None else "y"], y.to_numpy()
    else:
        targets = np.asarray(y)
        names = ["y"] if targets.ndim == 1 else [f"y{j}" for j in range(targets.shape[1])]
    if len(targets) != len(features):
        raise DataError(f"y: {len(targets)} target(s) for {len(features)} row(s) of X")
    if pd.isna(pd.DataFrame(targets)).to_numpy().any():
        raise DataError("y: has empty or NaN targets; drop those rows first")
    weights = None
    if sample_weight is not None:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("sample_weight: expected numbers, one weight per row") from None
        if weights.shape != (len(features),):
            raise DataError(
                f"sample_weight: expected one weight per row of X, shape ({len(features)},) "
                f"(got {weights.shape})"
            )
        weights = checked_weights(weights, "sample_weight")
    return Dataset(features, targets, names, {}, weights)


class Trained(Model):
    """A trained network with its preprocessing: ``predict``, ``predict_proba``, ``save``."""

    def predict(self, X) -> np.ndarray:
        """Class labels, or regression values in the target's units, for the rows of X."""
        out = self.outputs(X)
        if self.spec.multilabel:  # (n, labels) 0/1, the labels in spec.classes order
            return (out >= 0.5).astype(np.int64)
        if self.task == "classification":
            return np.asarray(self.spec.classes, dtype=object)[predicted_classes(out)]
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X) -> np.ndarray:
        """(n, classes) probabilities, the classes in ``spec.classes`` order."""
        if self.task != "classification":
            raise ConfigError("predict_proba: this is a regression model")
        if self.spec.multilabel:  # each label's own probability: its sigmoid unit
            return self.outputs(X)
        return probabilities(self.outputs(X))

    def outputs(self, X) -> np.ndarray:
        """The output layer's values (float64) for raw feature rows: a DataFrame with the
        trained columns (any order, others ignored) or an array of them in order."""
        frame = frame_of(X, self.spec.input_columns)
        missing = [c for c in self.spec.input_columns if c not in frame.columns]
        if missing:
            raise DataError(f"X: no column {missing[0]!r}, a feature the model was trained on")
        out, _ = predict_frame(self, frame[self.spec.input_columns], "X")
        return out

    def save(self, path: str | Path) -> Path:
        """Write a weights file (`backprop eval`, `predict`, `export` read it)."""
        path = Path(path)
        save_weights(path, self.net, self.spec, self.mean, self.scale)
        return path


def train(
    config: Config | Mapping[str, Any] | str | Path, X=None, y=None, sample_weight=None
) -> Trained:
    """Train a network on X and y (or on the config's own data when they are not given),
    in memory; the same weights ``backprop train`` gives for the same config and rows.
    ``sample_weight`` (n,): each row's weight in the loss, as data.sample_weight's column."""
    cfg = config_of(config, in_memory=X is not None)
    if (X is None) != (y is None):
        raise ConfigError("train: give both X and y, or neither (the config's data)")
    if sample_weight is not None and X is None:
        raise ConfigError(
            "train: sample_weight goes with X and y; a config's own data takes data.sample_weight"
        )
    prep = None
    if X is not None:
        prep = prepare(
            dataset_of(X, y, sample_weight),
            cfg.data,
            cfg.loss,
            cfg.seed,
            dtype=cfg.model.dtype,
            where="X",
            scale_target=cfg.scales_target,
            task=cfg.task,
            units=cfg.model.layers[-1].units,
        )
    s = setup(cfg, "config", prep)
    trainer = make_trainer(s, build_optimizer(cfg, s.net))
    for _ in trainer.run():
        pass
    spec = weights_spec(s, s.net, trainer.epoch)
    if trainer.restores_best:
        spec.restored_best_epoch = trainer.early.best_epoch
    return Trained(Path(IN_MEMORY), spec, s.net, s.prep.mean, s.prep.scale)


def train_run(config: Config | Mapping[str, Any] | str | Path, out: str | None = None) -> Path:
    """Train as ``backprop train`` does (the config's data, a run directory with every file);
    returns the run directory."""
    cfg = config_of(config)
    run = Run(cfg, "config", out=out)
    try:
        run.start()
        for _ in run.epochs():
            pass
    finally:
        run.close()
    return run.dir


def load(path: str | Path) -> Trained:
    """A weights file (a run's weights.npz, or ``Trained.save``'s), ready to predict."""
    m = load_model(path)
    return Trained(m.path, m.spec, m.net, m.mean, m.scale)
