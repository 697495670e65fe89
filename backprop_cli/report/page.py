"""One self-contained HTML page: styles, the Vega/Vega-Lite/vega-embed bundle (from
vl-convert, which ships it, so nothing is fetched: no CDN, no network) and the charts' specs
inline.

Each chart is a ``<div class="chart" data-chart=KIND>``; when vega-embed has drawn it, the
div gets ``data-rendered="true"``, and any error (a script error, a failed embed) is
collected in ``<body data-errors>`` and on the console, so that a browser test can see that
every chart rendered.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json

from ..errors import require_extra
from ..store.files import json_safe
from ..version import __version__
from . import charts
from .collect import RunReport

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 0 auto; max-width: 1280px; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 24px 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .caption, .note { color: #666; } .note { font-style: italic; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.panel { min-width: 320px; } .caption { max-width: 460px; font-size: 13px; }
table.summary { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.summary th, table.summary td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
table.summary td { white-space: nowrap; }
table.summary th:first-child, table.summary td:first-child { text-align: left; }
details summary { cursor: pointer; font-weight: 600; margin: 18px 0 6px; }
pre { background: #f6f6f6; padding: 10px 12px; border-radius: 4px; overflow-x: auto; font-size: 12px; }
"""

SCRIPT = """
const errors = [];
function fail(message) {
  errors.push(String(message));
  document.body.dataset.errors = JSON.stringify(errors);
}
window.addEventListener("error", (e) => fail(e.message));
window.addEventListener("unhandledrejection", (e) => fail(e.reason));
const charts = JSON.parse(document.getElementById("chart-specs").textContent);
Promise.all(Object.entries(charts).map(([id, spec]) => {
  const el = document.getElementById(id);
  return vegaEmbed(el, spec, {actions: false, renderer: "svg"})
    .then(() => { el.dataset.rendered = "true"; })
    .catch((err) => { console.error(err); fail(id + ": " + err); });
})).then(() => { document.body.dataset.done = "true"; });
"""

CAPTIONS = {
    "gradients": "Each layer's gradient norm over the epochs. When the first layers' lines sit "
    "orders of magnitude below the output layer's, those layers barely learn: vanishing "
    "gradients (see docs/backpropagation.md).",
    "network": "Line width and opacity: |w| relative to the layer's largest weight; blue "
    "positive, red negative. Large layers show the units with the largest weights in and out.",
    "regions": "Each cell coloured by the predicted class, paler where the network is less sure; "
    "the points are the data, coloured by their true class.",
}


@functools.cache
def _bundle() -> str:
    alt = require_extra("altair", "report", "report")
    vlc = require_extra("vl_convert", "report", "report")
    major_minor = alt.SCHEMA_VERSION.lstrip("v").split(".")[:2]
    return vlc.javascript_bundle(vl_version="v" + "_".join(major_minor))


class _Page:
    def __init__(self):
        self.parts: list[str] = []
        self.specs: dict[str, dict] = {}

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def chart(self, kind: str, spec: dict | None, caption: str | None = None) -> None:
        if spec is None:
            return
        cid = f"chart-{len(self.specs)}"
        self.specs[cid] = spec
        text = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
        self.add(
            f'<div class="panel"><div class="chart" id="{cid}" data-chart="{kind}"></div>{text}</div>'
        )


def _e(value) -> str:
    return html.escape(str(value))


def _number(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return _e(v)


def architecture(net) -> str:
    """``4 → 16 tanh → 3 softmax``: the inputs, then each layer's units and activation (``5 ×
    16 sigmoid`` for five such layers in a row)."""
    import itertools

    layers = [
        f"{n} {a}" + (" residual" if r else "")
        for n, a, r in zip(net.sizes[1:], net.activation_names, net.residual, strict=True)
    ]
    runs = [(layer, len(list(same))) for layer, same in itertools.groupby(layers)]
    return " → ".join([str(net.sizes[0])] + [f"{k} × {x}" if k > 1 else x for x, k in runs])


def _summary_table(runs: list[RunReport]) -> str:
    head = ["run", "network", "epochs", "stopped", "best epoch", "best", "test", "time"]
    rows = []
    for run in runs:
        s, m = run.summary, run.model
        net = architecture(m.net) if m else "-"
        best = s.get("best") or {}
        by = s.get("best_by", "")
        metric = "accuracy" if run.task == "classification" else "r2"
        test = s.get("test") or {}
        cells = [
            run.label,
            net,
            s.get("epochs", len(run.rows)),
            (s.get("stop_reason") or "not finished").replace("_", " "),
            best.get("epoch", "-"),
            f"{by} {_number(best.get(by))}" if by else "-",
            f"{metric} {_number(test.get(metric))} ({test['rows']} rows)"
            if test.get("rows")
            else "-",
            f"{s['time_s']:.2f}s" if "time_s" in s else "-",
        ]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_e(c) if not isinstance(c, float) else _number(c)}</td>" for c in cells
            )
            + "</tr>"
        )
    header = "".join(f"<th>{h}</th>" for h in head)
    return f'<table class="summary"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _run_section(page: _Page, run: RunReport, several: bool) -> None:
    page.add(f'<h2 id="run-{_e(run.label)}">{_e(run.label) if several else "The run"}</h2>')
    page.add('<div class="row">')
    page.chart("gradients", charts.gradients(run), CAPTIONS["gradients"])
    page.chart("confusion", charts.confusion(run))
    page.chart("regions", charts.regions(run), CAPTIONS["regions"])
    page.add("</div>")
    page.add('<div class="row">')
    page.chart("network", charts.network(run), CAPTIONS["network"])
    page.add("</div>")
    for section, why in run.notes.items():
        page.add(f'<p class="note">no {section} picture: {_e(why)}</p>')
    warnings = run.summary.get("warnings") or []
    if warnings:
        page.add("<h3>Warnings during training</h3><ul>")
        page.add("".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    if run.config_text is not None:
        page.add(
            f"<details><summary>config.yaml</summary><pre>{_e(run.config_text)}</pre></details>"
        )


def render(runs: list[RunReport]) -> str:
    """The page for ``runs`` (their curves overlaid; a section for each)."""
    bundle = _bundle()
    page = _Page()
    names = ", ".join(r.label for r in runs)
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page.add(f"<h1>backprop report: {_e(names)}</h1>")
    page.add(f'<p class="meta">{len(runs)} run(s) · backprop {__version__} · {_e(when)}</p>')
    page.add("<h2>Summary</h2>" + _summary_table(runs))
    page.add("<h2>Training</h2>")
    page.add('<div class="row">')
    page.chart("loss", charts.curves(runs, "loss", "loss"))
    page.chart("accuracy", charts.curves(runs, "accuracy", "accuracy"))
    page.chart("r2", charts.curves(runs, "r2", "R^2"))
    page.chart("lr", charts.learning_rate(runs))
    page.add("</div>")
    for run in runs:
        _run_section(page, run, len(runs) > 1)
    specs = json.dumps(json_safe(page.specs), allow_nan=False)
    for c in "<>&":  # as Django's json_script: no label can end or confuse the script element
        specs = specs.replace(c, f"\\u{ord(c):04x}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>backprop report: {_e(names)}</title><style>{STYLE}</style>"
        f"<script>{bundle}</script></head>\n<body>\n"
        + "\n".join(page.parts)
        + f'\n<script type="application/json" id="chart-specs">{specs}</script>'
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
