"""The trace rendered for a person: ``backprop trace`` without --json.

Each quantity of one forward and backward pass (docs/backpropagation.md's notation) is a
table of its rows, wide layers shown in part (as many columns as the terminal fits).
"""

from __future__ import annotations

SHOWN = 8  # columns (and matrix rows) of a wide layer shown in the trace's tables


def json_order(t: dict) -> dict:
    """The trace with its description first and the per-layer numbers last."""
    head = [k for k in t if k not in ("x", "y", "layers", "optimizer", "C", "fused")]
    return {
        **{k: t[k] for k in head},
        "x": t["x"],
        "y": t["y"],
        "C": t["C"],
        "fused": t["fused"],
        "layers": t["layers"],
        "optimizer": t["optimizer"],
    }


def _plain(text: str) -> str:
    """Text from the user's files (a path, a label) inside a Rich markup line: shown as it is."""
    from rich.markup import escape

    from .console import safe

    return escape(safe(str(text)))


def _num(v) -> str:
    return f"{float(v):.4g}"


def _vector_table(rows: list[tuple[str, object]], width: int, shown: int | None = None):
    """A table of named row vectors (each an array of ``width`` values), the first columns;
    as many as fit the terminal, at most SHOWN."""
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table

    from .console import stdout_console

    if shown is None:
        con = stdout_console()
        for k in range(min(width, SHOWN), 0, -1):
            t = _vector_table(rows, width, k)
            wide = con.options.update_width(10_000)  # measure unclamped
            if k == 1 or Measurement.get(con, wide, t).maximum <= con.width:
                return t
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    t.add_column("", style="bold", no_wrap=True)
    for j in range(shown):
        t.add_column(str(j), justify="right", no_wrap=True)
    if width > shown:
        t.add_column("…")
    for label, vec in rows:
        cells = [_num(v) for v in list(vec)[:shown]]
        t.add_row(label, *cells, *(["…"] if width > shown else []))
    return t


def _matrix_table(M, row_name: str = "row"):
    """A (rows, cols) matrix, at most SHOWN rows and the columns that fit, then an ellipsis."""
    r, c = M.shape
    rows = [(f"{row_name} {i}", M[i]) for i in range(min(r, SHOWN))]
    t = _vector_table(rows, c)
    if r > SHOWN:
        t.add_row("…", *["…"] * (len(t.columns) - 1))
    return t


def _shape(a) -> str:
    return "x".join(str(s) for s in a.shape)


def _per_row(name: str, M, n: int) -> list[tuple[str, object]]:
    """One labelled vector per traced row: ``name`` alone for one row, ``name [i]`` for several."""
    return [(name if n == 1 else f"{name} [{i}]", M[i]) for i in range(n)]


def render_trace(t: dict) -> None:
    """Print the trace: what was traced, the input, the forward pass, the backward pass
    (BP1-BP4) and the optimizer's update, each quantity as a table of its rows."""
    from .console import stdout_console

    out = stdout_console().print
    _header(out, t)
    _input(out, t)
    _forward(out, t)
    _backward(out, t)
    _update(out, t)


def _header(out, t: dict) -> None:
    layers, n = t["layers"], t["rows"]
    rows_text = (
        f"training row {t['sample']}"
        if n == 1
        else f"training rows {t['sample']}-{t['sample'] + n - 1}"
    )
    source = (
        f"parameters from {_plain(t['weights'])}"
        if t["weights"]
        else "the config's initial weights (its seed)"
    )
    out(
        f"[bold]trace of {_plain(t['config'])}[/]: {rows_text} ({n} row(s)), {t['dtype']}, {source}"
    )
    sizes = "-".join(str(s) for s in t["sizes"])
    acts = ", ".join(lay["activation"] + (" residual" if lay["residual"] else "") for lay in layers)
    out(f"network {sizes} ({acts}), loss {t['loss']}")
    out(
        "layers are counted from 0 (docs/backpropagation.md); a^(-1) = x, the input rows; "
        "W^l is (fan_in, fan_out), the column-vector convention's matrix transposed, so "
        "z^l = a^(l-1) W^l + b^l",
        style="dim",
    )
    if t["dropout_off"]:
        out(
            f"dropout (layer(s) {', '.join(map(str, t['dropout_off']))}) is off in the trace: "
            "it traces evaluation mode, so the numbers do not depend on random masks",
            style="yellow",
        )
    if len(layers) and any(w > SHOWN for w in t["sizes"]):
        out(
            f"wide layers are shown in part: the first {SHOWN} rows and columns (fewer columns if "
            "the terminal is narrow), then …; --json has every number",
            style="dim",
        )


def _input(out, t: dict) -> None:
    layers, n = t["layers"], t["rows"]
    x = t["x"]
    how = "standardized as in training" if t["standardized"] else "data.standardize is off"
    out(f"\n[bold]input[/] x = a^(-1) ({_shape(x)}), {how}")
    for i, row in enumerate(t["dataset_rows"]):
        label = t["targets"][i]
        raw = ", ".join(
            _num(v) if isinstance(v, float) else _plain(repr(v)) for v in t["raw_x"][i][:SHOWN]
        )
        more = ", …" if len(t["raw_x"][i]) > SHOWN else ""
        out(
            f"  dataset row {row}: features \\[{raw}{more}], target {_plain(repr(label))}",
            style="dim",
        )
    out(_vector_table(_per_row("x", x, n), x.shape[1]))
    y = t["y"]
    if t["loss"] == "cross_entropy":
        k = layers[-1]["a"].shape[1]
        onehot = [[1.0 if j == int(y[i]) else 0.0 for j in range(k)] for i in range(n)]
        out(f"target y: class indices {[int(v) for v in y]}, one-hot:")
        out(_vector_table(_per_row("y", onehot, n), k))
    else:
        out(f"target y ({_shape(y)})")
        out(_vector_table(_per_row("y", y, n), y.shape[1]))


def _forward(out, t: dict) -> None:
    layers, n = t["layers"], t["rows"]
    L = len(layers) - 1
    out("\n[bold underline]forward pass[/]")
    for lay in layers:
        l = lay["layer"]
        prev = f"a^{l - 1}" if l else "a^(-1)"
        act = lay["activation"]
        a_def = f"{act}(z^{l})" + (f" + {prev}  (residual)" if lay["residual"] else "")
        out(
            f"\n[bold]layer {l}[/]: W^{l} ({_shape(lay['W'])}), b^{l} ({_shape(lay['b'])});  "
            f"z^{l} = {prev} W^{l} + b^{l} ({_shape(lay['z'])});  a^{l} = {a_def} ({_shape(lay['a'])})"
        )
        out(f"W^{l}", style="dim")
        out(_matrix_table(lay["W"]))
        width = lay["z"].shape[1]
        out(
            _vector_table(
                [
                    ("b", lay["b"]),
                    *_per_row(f"z^{l}", lay["z"], n),
                    *_per_row(f"a^{l}", lay["a"], n),
                ],
                width,
            )
        )
    C = t["C"]
    out(f"\n[bold]loss[/] C = {t['loss']}(a^{L}, y) = {C:.6g}  (mean over the {n} row(s))")


def _backward(out, t: dict) -> None:
    layers, n = t["layers"], t["rows"]
    L = len(layers) - 1
    out("\n[bold underline]backward pass[/]")
    last = layers[L]
    width = last["delta"].shape[1]
    if t["fused"]:
        count = "n" if t["loss"] == "cross_entropy" else "n k"
        out(
            f"\n[bold]BP1[/] delta^{L} = (a^{L} - y) / {count}: {last['activation']} + {t['loss']} "
            f"are fused (dC/da^{L} * sigma'(z^{L}) simplifies to this, exactly)"
        )
        out(_vector_table(_per_row(f"delta^{L}", last["delta"], n), width))
    else:
        how = (
            f"sigma'(z^{L})"
            if last["sigma_prime"] is not None
            else "softmax's Jacobian (a vector-Jacobian product)"
        )
        out(f"\n[bold]BP1[/] delta^{L} = dC/da^{L} * {how}")
        rows = _per_row(f"dC/da^{L}", last["grad_a"], n)
        if last["sigma_prime"] is not None:
            rows += _per_row(f"sigma'(z^{L})", last["sigma_prime"], n)
        rows += _per_row(f"delta^{L}", last["delta"], n)
        out(_vector_table(rows, width))
    for l in range(L - 1, -1, -1):
        lay, nxt = layers[l], layers[l + 1]
        width = lay["delta"].shape[1]
        skip = f" + dC/da^{l + 1} (layer {l + 1} is residual)" if nxt["residual"] else ""
        how = (
            f"sigma'(z^{l})"
            if lay["sigma_prime"] is not None
            else "softmax's Jacobian (a vector-Jacobian product)"
        )
        out(
            f"\n[bold]BP2[/] delta^{l} = (delta^{l + 1} W^{l + 1}^T{skip}) * {how}  ({_shape(lay['delta'])})"
        )
        rows = _per_row(f"delta^{l + 1} W^{l + 1}^T", lay["back"], n)
        if nxt["residual"]:
            rows += _per_row(f"+ dC/da^{l + 1} (skip)", nxt["grad_a"], n)
            rows += _per_row(f"= dC/da^{l}", lay["grad_a"], n)
        if lay["sigma_prime"] is not None:
            rows += _per_row(f"sigma'(z^{l})", lay["sigma_prime"], n)
        rows += _per_row(f"delta^{l}", lay["delta"], n)
        out(_vector_table(rows, width))
    for lay in reversed(layers):
        l = lay["layer"]
        prev = f"a^{l - 1}" if l else "a^(-1)"
        out(
            f"\n[bold]BP3[/] dC/dW^{l} = {prev}^T delta^{l} ({_shape(lay['dW'])});  "
            f"[bold]BP4[/] dC/db^{l} = sum over rows of delta^{l} ({_shape(lay['db'])})"
        )
        out(_matrix_table(lay["dW"]))
        out(_vector_table([(f"dC/db^{l}", lay["db"])], lay["db"].shape[0]))


def _update(out, t: dict) -> None:
    layers = t["layers"]
    opt = t["optimizer"]
    hyper = ", ".join(f"{k} {v}" for k, v in opt["hyper"].items())
    out(
        f"\n[bold underline]update[/]: {opt['name']} (lr {opt['lr']:g}, {hyper}), the first step of a "
        "fresh optimizer at the first epoch's lr; ΔW^l = W^l after - W^l before"
    )
    clip = opt.get("clip")
    if clip and "clip_grad_norm" in clip:
        did = f"scaled by {clip['factor']:.4g}" if clip["scaled"] else "under the limit, not scaled"
        out(
            f"clip_grad_norm {clip['clip_grad_norm']:g}: the gradient's norm is {clip['norm']:.4g}, {did}"
        )
    elif clip:
        out(f"clip_grad_value {clip['clip_grad_value']:g}: {clip['entries']} entries clamped")
    for lay in layers:
        l = lay["layer"]
        out(f"\nΔW^{l} ({_shape(lay['update_W'])}), Δb^{l} ({_shape(lay['update_b'])})")
        out(_matrix_table(lay["update_W"]))
        out(_vector_table([(f"Δb^{l}", lay["update_b"])], lay["update_b"].shape[0]))
