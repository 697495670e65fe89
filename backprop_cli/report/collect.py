"""What a report shows of a run, read from its directory: the epochs (metrics.csv), the
summary, the config, and from weights.npz the network's parameters, the confusion matrix on
the held-out rows and, for two input features, the decision regions over the data.

The epochs are required (a report of nothing is an error); the rest is shown when it can be
made, and when it cannot (the weights are gone, the data file moved) the report says why in
place of the picture, and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackpropError, DataError
from ..inference import Model, boundary_data, evaluate_model, grid_outputs, load_model
from ..store import rundir

GRID = 60  # decision regions: GRID x GRID cells
MAX_UNITS = 16  # the network drawing: at most this many units per layer


@dataclass
class Regions:
    """Decision regions (or the predicted surface, for regression) over two features."""

    names: list[str]
    xs: np.ndarray  # GRID + 1 cell edges along each feature
    ys: np.ndarray
    value: np.ndarray  # (GRID, GRID): the predicted class index, or the prediction
    confidence: np.ndarray  # (GRID, GRID): the winning probability (1 for regression)
    X: np.ndarray  # the data rows, original units
    labels: np.ndarray  # their class index, or target value


@dataclass
class Layer:
    """The drawn part of one weight matrix: units ``rows`` of the layer below to ``cols``."""

    W: np.ndarray  # (len(rows), len(cols))
    rows: list[int]
    cols: list[int]
    activation: str


@dataclass
class RunReport:
    label: str
    path: Path
    rows: list[dict]
    summary: dict
    config_text: str | None
    model: Model | None = None
    evaluation: dict | None = None
    regions: Regions | None = None
    layers: list[Layer] = field(default_factory=list)
    unit_names: list[list[str]] = field(default_factory=list)  # per layer of units, drawn ones
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it is not shown

    @property
    def task(self) -> str:
        return self.summary.get("task") or (
            "classification" if self._has("accuracy") else "regression"
        )

    def _has(self, metric: str) -> bool:
        return bool(self.rows) and f"train_{metric}" in self.rows[0]

    def layer_count(self) -> int:
        n = 0
        while self.rows and f"grad_norm_{n}" in self.rows[0]:
            n += 1
        return n


def labels_for(run_dirs: list[Path]) -> list[str]:
    """Each run's name in the legend: its directory name, or the path when two share one."""
    names = [p.name or p.resolve().name for p in run_dirs]
    return [str(p) for p in run_dirs] if len(set(names)) < len(names) else names


def collect(run_dirs: list[Path]) -> list[RunReport]:
    return [collect_run(p, label) for p, label in zip(run_dirs, labels_for(run_dirs), strict=True)]


def collect_run(path: Path, label: str) -> RunReport:
    if not path.is_dir():
        raise DataError(f"{path}: not a directory; expected a run directory")
    rows = rundir.read_metrics(path)
    if not rows:
        raise DataError(f"{path / rundir.METRICS}: no epochs recorded yet")
    try:
        summary = rundir.read_summary(path)
    except rundir.RunFileError:
        summary = {}  # a run still going, or killed: the epochs are the record
    config = path / rundir.CONFIG
    text = config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None
    run = RunReport(label, path, rows, summary, text)
    weights = path / rundir.WEIGHTS
    if not weights.is_file():
        run.notes["model"] = f"no {rundir.WEIGHTS} in {path}"
        return run
    try:
        run.model = load_model(weights)
    except BackpropError as e:
        run.notes["model"] = str(e)
        return run
    _network(run)
    _evaluation(run)
    _regions(run)
    return run


def held_out_split(model: Model) -> str:
    d = model.spec.data
    return "test" if d.test > 0 else "val" if d.validation > 0 else "train"


def _evaluation(run: RunReport) -> None:
    if run.model.task != "classification":
        return
    try:
        run.evaluation = evaluate_model(run.model, split=held_out_split(run.model))
    except BackpropError as e:
        run.notes["confusion"] = str(e)


def _regions(run: RunReport) -> None:
    spec = run.model.spec
    if spec.sizes[0] != 2:
        return
    try:
        model, X, labels = boundary_data(run.path)
    except BackpropError as e:
        if "2 numeric input features" not in str(e):  # a categorical pair: no plane to draw
            run.notes["regions"] = str(e)
        return
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID + 1)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID + 1)
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    xx, yy = np.meshgrid(cx, cy)
    out = grid_outputs(model, np.c_[xx.ravel(), yy.ravel()])
    if model.task == "classification":
        if out.shape[1] == 1:  # one sigmoid unit: p(class 1)
            value, confidence = (out[:, 0] >= 0.5).astype(int), np.maximum(out[:, 0], 1 - out[:, 0])
        else:
            value, confidence = out.argmax(axis=1), out.max(axis=1)
    else:
        value, confidence = model.unscale(out)[:, 0], np.ones(len(out))
    names = spec.input_columns or ["x0", "x1"]
    shape = (GRID, GRID)
    run.regions = Regions(names, xs, ys, value.reshape(shape), confidence.reshape(shape), X, labels)


def _network(run: RunReport) -> None:
    """The units drawn per layer (the MAX_UNITS with the largest weights in and out, in
    their order) and the weights between them."""
    net, spec = run.model.net, run.model.spec
    W = [np.asarray(w, np.float64) for w in net.W]
    keep = []
    for l, size in enumerate(net.sizes):
        strength = np.zeros(size)
        if l > 0:
            strength += np.abs(W[l - 1]).sum(axis=0)
        if l < len(W):
            strength += np.abs(W[l]).sum(axis=1)
        order = np.argsort(-strength, kind="stable")[:MAX_UNITS]
        keep.append(sorted(int(i) for i in order))
    run.layers = [
        Layer(W[l][np.ix_(keep[l], keep[l + 1])], keep[l], keep[l + 1], net.activation_names[l])
        for l in range(len(W))
    ]
    inputs = spec.feature_names or [f"x{i}" for i in range(net.sizes[0])]
    outputs = (
        [str(c) for c in spec.classes]
        if spec.classes and len(spec.classes) == net.sizes[-1]
        else spec.target_names or [f"y{j}" for j in range(net.sizes[-1])]
    )
    names = [inputs] + [[f"h{l + 1}.{j}" for j in range(s)] for l, s in enumerate(net.sizes[1:-1])]
    names.append(list(outputs))
    run.unit_names = [[str(names[l][i]) for i in keep[l]] for l in range(len(keep))]
