"""``backprop report``: a run (or several, overlaid) as one self-contained HTML page.

The page holds the summary, the loss and metric curves, each layer's gradient norms over
the epochs, the confusion matrix on the held-out rows, the decision regions of a 2-D
problem, the network drawn with its weights, and the config. The charts are Vega-Lite
specs made with altair; the page inlines the Vega libraries from vl-convert, so it opens
from disk with the network off. Both are the optional ``report`` extra.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require_extra
from ..store.files import write_output

REPORT = "report.html"


def require() -> None:
    """Fail now, with the install line, when the report extra is missing."""
    require_extra("altair", "report", "report")
    require_extra("vl_convert", "report", "report")


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Collect ``run_dirs`` and write their page to ``out`` (atomically); ``out``."""
    from .collect import collect
    from .page import render

    require()
    runs = collect([Path(d) for d in run_dirs])
    write_output(out, render(runs))
    return Path(out)
