"""The report's charts as Vega-Lite specs, built with altair (the ``report`` extra).

Each function takes collected runs and returns a spec (a dict) that vega-embed draws in the
page. The data rides inside the spec, so the page needs nothing but itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import require_extra
from .collect import RunReport

WIDTH, HEIGHT = 420, 260
SCHEME = "tableau10"


def _alt():
    return require_extra("altair", "report", "report")


def _run_highlight(alt, several: bool):
    """Click a run in the legend to pick it out (several runs only)."""
    if not several:
        return None, alt.value(1)
    pick = alt.selection_point(fields=["run"], bind="legend")
    return pick, alt.condition(pick, alt.value(1), alt.value(0.15))


def curve_frame(runs: list[RunReport], quantity: str) -> pd.DataFrame:
    """Long form: run, epoch, split (train or val), value; empty values dropped."""
    out = []
    for run in runs:
        for split in ("train", "val"):
            column = f"{split}_{quantity}"
            for r in run.rows:
                v = r.get(column)
                if v is not None and np.isfinite(v):
                    out.append({"run": run.label, "epoch": r["epoch"], "split": split, "value": v})
    return pd.DataFrame(out, columns=["run", "epoch", "split", "value"])


def curves(runs: list[RunReport], quantity: str, title: str) -> dict | None:
    """train (solid) and val (dashed) ``quantity`` over the epochs, one colour per run."""
    alt = _alt()
    df = curve_frame(runs, quantity)
    if df.empty:
        return None
    pick, opacity = _run_highlight(alt, len(runs) > 1)
    scale = alt.Scale(zero=False)
    if quantity == "loss" and (df["value"] > 0).all():  # early epochs would flatten the rest
        scale, title = alt.Scale(type="log"), f"{title} (log scale)"
    chart = (
        alt.Chart(df, title=title, width=WIDTH, height=HEIGHT)
        .mark_line(point=len(df) <= 60)
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("value:Q", title=title, scale=scale),
            color=alt.Color("run:N", scale=alt.Scale(scheme=SCHEME), title="run"),
            strokeDash=alt.StrokeDash("split:N", sort=["train", "val"], title="split"),
            opacity=opacity,
            tooltip=["run", "split", "epoch", alt.Tooltip("value:Q", format=".4g")],
        )
    )
    return (chart.add_params(pick) if pick is not None else chart).interactive().to_dict()


def learning_rate(runs: list[RunReport]) -> dict | None:
    alt = _alt()
    df = pd.DataFrame(
        [
            {"run": run.label, "epoch": r["epoch"], "lr": r["lr"]}
            for run in runs
            for r in run.rows
            if "lr" in r
        ]
    )
    if df.empty or all(g["lr"].nunique() == 1 for _, g in df.groupby("run")):
        return None  # constant: the config says it
    return (
        alt.Chart(df, title="learning rate", width=WIDTH, height=HEIGHT)
        .mark_line()
        .encode(
            x="epoch:Q",
            y=alt.Y("lr:Q", title="learning rate"),
            color=alt.Color("run:N", scale=alt.Scale(scheme=SCHEME), title="run"),
            tooltip=["run", "epoch", alt.Tooltip("lr:Q", format=".4g")],
        )
        .to_dict()
    )


def gradient_frame(run: RunReport) -> pd.DataFrame:
    acts = run.model.net.activation_names if run.model is not None else None
    out = []
    for l in range(run.layer_count()):
        name = f"layer {l}" + (f" ({acts[l]})" if acts else "")
        for r in run.rows:
            g = r[f"grad_norm_{l}"]
            if np.isfinite(g) and g > 0:  # a log scale has no room for 0
                out.append({"layer": name, "index": l, "epoch": r["epoch"], "norm": g})
    return pd.DataFrame(out, columns=["layer", "index", "epoch", "norm"])


def gradients(run: RunReport) -> dict | None:
    """Each layer's gradient norm over the epochs on a log scale: the vanishing-gradient
    picture (the first layers' lines far below the output layer's)."""
    alt = _alt()
    df = gradient_frame(run)
    if df.empty:
        return None
    layers = list(dict.fromkeys(df["layer"]))
    return (
        alt.Chart(df, title="gradient norm per layer (log scale)", width=WIDTH, height=HEIGHT)
        .mark_line()
        .encode(
            x="epoch:Q",
            y=alt.Y("norm:Q", scale=alt.Scale(type="log"), title="||dC/dW, dC/db||"),
            color=alt.Color(
                "layer:N", sort=layers, scale=alt.Scale(scheme="viridis"), title="layer"
            ),
            tooltip=["layer", "epoch", alt.Tooltip("norm:Q", format=".3e")],
        )
        .interactive()
        .to_dict()
    )


def confusion(run: RunReport) -> dict | None:
    """Counts of (true, predicted) classes, coloured by the share of the true class's rows."""
    alt = _alt()
    ev = run.evaluation
    if not ev or "confusion_matrix" not in ev:  # multi-label: no one confusion matrix
        return None
    classes = [str(c) for c in ev["classes"]]
    cm = np.asarray(ev["confusion_matrix"])
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
    df = pd.DataFrame(
        [
            {
                "true": classes[i],
                "predicted": classes[j],
                "rows": int(cm[i, j]),
                "share": share[i, j],
            }
            for i in range(len(classes))
            for j in range(len(classes))
        ]
    )
    side = max(160, min(420, 48 * len(classes)))
    base = alt.Chart(df, width=side, height=side, title=f"confusion matrix: {ev['data']}")
    x = alt.X("predicted:N", sort=classes, title="predicted", axis=alt.Axis(labelAngle=0))
    y = alt.Y("true:N", sort=classes, title="true")
    cells = base.mark_rect().encode(
        x=x,
        y=y,
        color=alt.Color(
            "share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="share of row"
        ),
        tooltip=["true", "predicted", "rows", alt.Tooltip("share:Q", format=".1%")],
    )
    counts = base.mark_text(fontSize=11).encode(
        x=x,
        y=y,
        text="rows:Q",
        color=alt.condition("datum.share > 0.6", alt.value("white"), alt.value("black")),
    )
    return (cells + counts).to_dict()


def regions(run: RunReport) -> dict | None:
    """Decision regions (paler where the network is less sure) with the data points over them;
    for regression the predicted surface."""
    alt = _alt()
    g = run.regions
    if g is None:
        return None
    classification = run.model.task == "classification"
    classes = [str(c) for c in run.model.spec.classes or []]
    n = g.value.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n))  # i along x, j along y
    cells = pd.DataFrame(
        {
            "x": g.xs[i.ravel()],
            "x2": g.xs[i.ravel() + 1],
            "y": g.ys[j.ravel()],
            "y2": g.ys[j.ravel() + 1],
            "value": [classes[int(v)] for v in g.value.ravel()]
            if classification
            else g.value.ravel(),
            "confidence": g.confidence.ravel(),
        }
    )
    points = pd.DataFrame(
        {
            "x": g.X[:, 0],
            "y": g.X[:, 1],
            "value": [classes[int(v)] for v in g.labels] if classification else g.labels,
        }
    )
    if classification:
        color = alt.Color("value:N", scale=alt.Scale(domain=classes, scheme=SCHEME), title="class")
    else:
        color = alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), title="prediction")
    xs = alt.X("x:Q", title=g.names[0], scale=alt.Scale(domain=[g.xs[0], g.xs[-1]], nice=False))
    ys = alt.Y("y:Q", title=g.names[1], scale=alt.Scale(domain=[g.ys[0], g.ys[-1]], nice=False))
    title = "decision regions" if classification else "prediction over the two features"
    area = (
        alt.Chart(cells, width=360, height=360, title=title)
        .mark_rect()
        .encode(
            x=xs,
            x2="x2:Q",
            y=ys,
            y2="y2:Q",
            color=color,
            opacity=alt.Opacity("confidence:Q", scale=alt.Scale(range=[0.15, 0.55]), legend=None)
            if classification
            else alt.value(0.8),
        )
    )
    size = float(np.clip(6000 / max(1, len(points)), 8, 60))
    dots = (
        alt.Chart(points)
        .mark_circle(size=size, stroke="black", strokeWidth=0.4, opacity=0.9)
        .encode(x=xs, y=ys, color=color, tooltip=["x", "y", "value"])
    )
    return (area + dots).to_dict()


def network(run: RunReport) -> dict | None:
    """The network as columns of units joined by its weights: line width and opacity by
    |w| (relative to the layer's largest), blue positive, red negative."""
    alt = _alt()
    if not run.layers:
        return None
    nodes, edges, heads = _network_frames(run)
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[-0.6, len(run.unit_names) - 0.4]))
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[-0.02, 1.1]))
    width = max(420, 160 * len(run.unit_names))
    lines = (
        alt.Chart(edges, width=width, height=380, title="the network: weights by magnitude")
        .mark_rule()
        .encode(
            x=x,
            y=y,
            x2="x2:Q",
            y2="y2:Q",
            color=alt.Color(
                "sign:N",
                scale=alt.Scale(domain=["positive", "negative"], range=["#3b6fb6", "#c8423b"]),
                title="weight",
            ),
            strokeWidth=alt.StrokeWidth(
                "strength:Q", scale=alt.Scale(range=[0.2, 3.5]), legend=None
            ),
            opacity=alt.Opacity("strength:Q", scale=alt.Scale(range=[0.08, 0.9]), legend=None),
            tooltip=["from", "to", alt.Tooltip("weight:Q", format=".4f")],
        )
    )
    dots = (
        alt.Chart(nodes)
        .mark_circle(size=110, color="#444", opacity=1)
        .encode(x=x, y=y, tooltip=["unit", "layer"])
    )
    labelled = nodes[nodes["label"] != ""]
    last = len(run.unit_names) - 1
    names = alt.layer(
        alt.Chart(labelled[labelled["layer"] == 0]).mark_text(fontSize=10, align="right", dx=-9),
        alt.Chart(labelled[labelled["layer"] == last]).mark_text(fontSize=10, align="left", dx=9),
    ).encode(x=x, y=y, text="label:N")
    top = alt.Chart(heads).mark_text(fontSize=11, fontWeight="bold").encode(x=x, y=y, text="text:N")
    return (lines + dots + names + top).to_dict()


def _network_frames(run: RunReport) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    sizes = run.model.net.sizes
    ys = [_positions(len(names)) for names in run.unit_names]
    nodes = []
    for l, names in enumerate(run.unit_names):
        edge = l == 0 or l == len(run.unit_names) - 1
        for k, name in enumerate(names):
            label = name if edge and len(names) <= 12 else ""
            nodes.append({"x": l, "y": ys[l][k], "unit": name, "layer": l, "label": label})
    edges = []
    for l, layer in enumerate(run.layers):
        top = float(np.abs(layer.W).max()) or 1.0
        for a, _ in enumerate(layer.rows):
            for b, _ in enumerate(layer.cols):
                w = float(layer.W[a, b])
                edges.append(
                    {
                        "x": l,
                        "y": ys[l][a],
                        "x2": l + 1,
                        "y2": ys[l + 1][b],
                        "weight": w,
                        "strength": abs(w) / top,
                        "sign": "positive" if w >= 0 else "negative",
                        "from": run.unit_names[l][a],
                        "to": run.unit_names[l + 1][b],
                    }
                )
    heads = []
    for l, size in enumerate(sizes):
        kind = "input" if l == 0 else run.layers[l - 1].activation
        shown = len(run.unit_names[l])
        count = f"{size}" if shown == size else f"{shown} of {size}"
        heads.append({"x": l, "y": 1.04, "text": f"{kind} ({count})"})
    return pd.DataFrame(nodes), pd.DataFrame(edges), pd.DataFrame(heads)


def _positions(n: int) -> list[float]:
    """n units spread down a column, centred."""
    if n == 1:
        return [0.5]
    return list(
        np.linspace(0.95, 0.05, n) if n > 4 else 0.5 + (np.arange(n)[::-1] - (n - 1) / 2) * 0.2
    )
