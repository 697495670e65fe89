"""Pictures of training for `backprop plot`: curves from metrics.csv, and decision regions.

matplotlib is an optional extra (``pip install 'backprop-cli[plot]'``), imported only when
a figure is made. Figures are built with ``matplotlib.figure.Figure`` and rendered by the
Agg canvas: no pyplot, no GUI backend, no global state. The functions return the Figure
(so tests can look at its axes); ``save_png`` writes it atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..errors import DataError, require_extra
from ..store import rundir

# Panel titles, also what the tests look for.
TITLE_LOSS = "loss"
TITLE_ACCURACY = "accuracy"
TITLE_R2 = "R^2"
TITLE_LR = "learning rate"
TITLE_GRADS = "gradient norm per layer (log scale)"
TITLE_GRADS_LAST = "gradient norm by layer, last epoch"


def require_matplotlib():
    """The matplotlib module, or a MissingExtra error saying how to get it."""
    require_extra("matplotlib.figure", "plot", "plot")
    return require_extra("matplotlib", "plot", "plot")


# ---------------------------------------------------------------------------- reading runs


def read_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv of a run as float columns (an empty cell is NaN), keyed by column name."""
    if not Path(run_dir).is_dir():
        raise DataError(f"{run_dir}: not a directory; expected a run directory")
    rows = rundir.read_metrics(run_dir)
    if not rows:
        raise DataError(f"{Path(run_dir) / rundir.METRICS}: no epochs recorded yet")
    return {name: np.array([float(r[name]) for r in rows]) for name in rows[0]}


def run_label(run_dir: str | Path) -> str:
    """The legend label of a run: its directory name (the config's name when that is '.')."""
    p = Path(run_dir)
    return p.name or p.resolve().name


def read_summary(run_dir: str | Path) -> dict:
    """summary.json of a run, or {} when it is missing or unreadable (it only adds to titles)."""
    try:
        return rundir.read_summary(run_dir)
    except rundir.RunFileError:
        return {}


def grad_columns(metrics: dict[str, np.ndarray]) -> list[np.ndarray]:
    out, l = [], 0
    while f"grad_norm_{l}" in metrics:
        out.append(metrics[f"grad_norm_{l}"])
        l += 1
    return out


# ---------------------------------------------------------------------------- training curves


def training_figure(run_dirs: list[str | Path]):
    """One figure: loss, accuracy or R^2, learning rate, per-layer gradient norms (log scale)
    over the epochs, and the gradient norm by layer at the last epoch; runs overlaid.

    With one run the gradient lines are coloured by layer (first layer light, output layer
    dark); with several, each run has its colour and its layers fade from light to full.
    """
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    runs = [(run_label(d), read_metrics(d), read_summary(d)) for d in run_dirs]
    labels = [name for name, _, _ in runs]
    if len(set(labels)) < len(labels):  # runs/a/x and runs/b/x: tell them apart by path
        labels = [str(Path(d)) for d in run_dirs]
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    axes = {
        "loss": fig.add_subplot(grid[0, 0]),
        "metric": fig.add_subplot(grid[0, 1]),
        "lr": fig.add_subplot(grid[0, 2]),
        "grads": fig.add_subplot(grid[1, 0:2]),
        "last": fig.add_subplot(grid[1, 2]),
    }
    metric_names: set[str] = set()
    for i, (label, m, _) in enumerate(runs):
        color = colormaps["tab10"](i % 10)
        metric_names |= _plot_curves(axes, label, m, color)
        _plot_grads(axes, label, m, color, single=len(runs) == 1)
    _label_axes(axes, runs, metric_names)
    fig.suptitle(_suptitle(runs, labels))
    return fig


def _plot_curves(axes: dict, label: str, m: dict, color) -> set[str]:
    """Loss, accuracy or R^2 (train solid, val dashed) and lr of one run; the metric names."""
    epoch, names = m["epoch"], set()
    axes["loss"].plot(epoch, m["train_loss"], color=color, label=f"{label} train")
    if "val_loss" in m and np.isfinite(m["val_loss"]).any():
        axes["loss"].plot(epoch, m["val_loss"], color=color, ls="--", label=f"{label} val")
    for metric, name in (("accuracy", TITLE_ACCURACY), ("r2", TITLE_R2)):
        if f"train_{metric}" not in m:
            continue
        names.add(name)
        axes["metric"].plot(epoch, m[f"train_{metric}"], color=color, label=f"{label} train")
        val = m.get(f"val_{metric}")
        if val is not None and np.isfinite(val).any():
            axes["metric"].plot(epoch, val, color=color, ls="--", label=f"{label} val")
    if "lr" in m:
        axes["lr"].plot(epoch, m["lr"], color=color, label=label)
    return names


def _plot_grads(axes: dict, label: str, m: dict, color, single: bool) -> None:
    """One run's per-layer gradient norms over the epochs, and by layer at the last epoch."""
    from matplotlib import colormaps

    grads = grad_columns(m)
    for l, g in enumerate(grads):
        frac = l / max(1, len(grads) - 1)
        positive = np.where(g > 0, g, np.nan)
        if single:
            shade = colormaps["viridis_r"](0.15 + 0.8 * frac)
            axes["grads"].plot(m["epoch"], positive, color=shade, label=f"layer {l}")
        else:
            axes["grads"].plot(
                m["epoch"],
                positive,
                color=color,
                alpha=0.3 + 0.7 * frac,
                label=label if l == len(grads) - 1 else None,
            )
    if grads:
        last = np.array([g[-1] for g in grads])
        axes["last"].plot(
            range(len(grads)), np.where(last > 0, last, np.nan), "o-", color=color, label=label
        )


def _label_axes(axes: dict, runs: list, metric_names: set[str]) -> None:
    """Titles, scales, grids and legends."""
    ax_loss, ax_metric, ax_lr, ax_grads, ax_last = axes.values()
    ax_loss.set(title=TITLE_LOSS, xlabel="epoch", ylabel="loss (solid: train, dashed: val)")
    lo, hi = ax_loss.dataLim.intervaly
    if lo > 0 and hi / lo > 10:  # a loss falling over decades; a flat one reads better linear
        ax_loss.set_yscale("log")
    title = " / ".join(sorted(metric_names, reverse=True)) or TITLE_ACCURACY
    ax_metric.set(title=title, xlabel="epoch", ylabel="(solid: train, dashed: val)")
    ax_lr.set(title=TITLE_LR, xlabel="epoch", ylabel="lr")
    ax_grads.set(
        title=TITLE_GRADS, xlabel="epoch", ylabel="||dC/dW^l, dC/db^l|| (RMS over the epoch)"
    )
    ax_grads.set_yscale("log")
    ax_last.set(title=TITLE_GRADS_LAST, xlabel="layer l (0: first)", ylabel="gradient norm")
    ax_last.set_yscale("log")
    _at_least_decades(ax_last, 2)
    lr_top = max((np.nanmax(m["lr"]) for _, m, _ in runs if "lr" in m), default=np.nan)
    if np.isfinite(lr_top) and lr_top > 0:
        ax_lr.set_ylim(0, 1.1 * lr_top)
    ax_last.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.values():
        ax.grid(True, which="major", alpha=0.3)
    if len(runs) > 1:
        for ax in (ax_loss, ax_metric, ax_lr, ax_last):
            ax.legend(fontsize="small")
        ax_grads.legend(fontsize="small", title="faint: first layer, solid: output layer")
    else:
        ax_loss.legend(fontsize="small")
        ax_metric.legend(fontsize="small")
        n_layers = len(grad_columns(runs[0][1]))
        if n_layers:
            ax_grads.legend(fontsize="small", ncol=max(1, math.ceil(n_layers / 5)))


def _at_least_decades(ax, decades: float) -> None:
    """Widen a log axis around its data to span at least ``decades`` orders of magnitude, so
    that nearly equal norms read as nearly equal rather than filling the panel."""
    lo, hi = ax.dataLim.intervaly
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > 0):
        return
    if math.log10(hi / lo) < decades:
        mid = math.sqrt(lo * hi)
        half = 10 ** (decades / 2)
        ax.set_ylim(mid / half, mid * half)


def _suptitle(runs, labels) -> str:
    if len(runs) > 1:
        return ", ".join(labels)
    label, m, summary = runs[0]
    parts = [label]
    if summary.get("name") and summary["name"] != label:
        parts[0] += f" ({summary['name']})"
    parts.append(f"{len(m['epoch'])} epoch(s)")
    if summary.get("stop_reason"):
        parts.append(summary["stop_reason"].replace("_", " "))
    test = summary.get("test") or {}
    for key, name in (("accuracy", "test accuracy"), ("r2", "test R^2")):
        if isinstance(test.get(key), int | float):
            parts.append(f"{name} {test[key]:.4f}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- decision regions


def boundary_figure(run_dirs: list[str | Path], resolution: int = 300):
    """Decision regions of each run (one panel per run) over its data points.

    The grid is laid over the original feature space and standardized with the run's
    stored x_mean and x_scale before the network sees it, as `predict` does.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    from ..inference import boundary_data, grid_outputs

    items = [(run_label(d), *boundary_data(d)) for d in run_dirs]
    fig = Figure(figsize=(5.5 * len(items), 5), layout="constrained")
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    for ax, (label, model, X, labels) in zip(axes, items, strict=True):
        size = float(np.clip(6000 / max(1, len(X)), 12, 80))  # few points: larger markers
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
        xx, yy = np.meshgrid(gx, gy)
        out = grid_outputs(model, np.c_[xx.ravel(), yy.ravel()])
        if model.task == "classification":
            _regions(ax, xx, yy, out, X, labels, model.spec.classes, size)
        else:
            _surface(fig, ax, xx, yy, out, X, labels, size)
        names = model.spec.feature_names or ["x0", "x1"]
        ax.set(
            title=f"{label}: "
            + ("decision regions" if model.task == "classification" else "prediction"),
            xlabel=names[0],
            ylabel=names[1],
            xlim=(gx[0], gx[-1]),
            ylim=(gy[0], gy[-1]),
        )
    return fig


def _regions(ax, xx, yy, out, X, labels, classes: list, size: float) -> None:
    """Each grid point coloured by its predicted class, paler where the network is less sure;
    the 0.5 contour for two classes; the data points by their class."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    k = len(classes)
    base = colormaps["tab10"]
    cmap = ListedColormap([base(c % 10) for c in range(k)])
    norm = BoundaryNorm(np.arange(-0.5, k), k)
    if out.shape[1] == 1:  # one sigmoid unit: p(class 1)
        p1 = out[:, 0]
        pred = (p1 >= 0.5).astype(int)
        confidence = np.maximum(p1, 1 - p1)
    else:
        pred = out.argmax(axis=1)
        confidence = out.max(axis=1)
        p1 = out[:, 1] if k == 2 else None
    rgba = cmap(norm(pred))
    rgba[:, 3] = 0.15 + 0.35 * (confidence - 1 / k) / (1 - 1 / k)
    ax.imshow(
        rgba.reshape(*xx.shape, 4),
        origin="lower",
        extent=(xx[0, 0], xx[0, -1], yy[0, 0], yy[-1, 0]),
        aspect="auto",
        interpolation="nearest",
    )
    if p1 is not None:
        ax.contour(xx, yy, p1.reshape(xx.shape), levels=[0.5], colors="k", linewidths=1)
    for c in range(k):
        sel = labels == c
        ax.scatter(
            X[sel, 0],
            X[sel, 1],
            s=size,
            color=base(c % 10),
            edgecolors="k",
            linewidths=0.4,
            label=str(classes[c]),
        )
    ax.legend(title="class", fontsize="small", loc="best")


def _surface(fig, ax, xx, yy, out, X, labels, size: float) -> None:
    """A regression network's prediction over the grid, the data points by their target."""
    values = out[:, 0].reshape(xx.shape)
    lo = min(values.min(), labels.min())
    hi = max(values.max(), labels.max())
    cs = ax.contourf(xx, yy, values, levels=np.linspace(lo, hi, 21), cmap="viridis", alpha=0.6)
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap="viridis", vmin=lo, vmax=hi, s=size, edgecolors="k")
    fig.colorbar(cs, ax=ax, label="prediction (points: target)")


# ---------------------------------------------------------------------------- writing


def save_png(fig, path: str | Path, dpi: int = 100) -> None:
    """Render ``fig`` with the Agg canvas and write it atomically as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..store.files import atomic_write

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    atomic_write(Path(path), lambda f: f.write(data))
