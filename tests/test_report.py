"""backprop report and train --report: what each chart holds (against the run's own files and
an independent computation), the page's self-containment, the command's file rules, and the
page in a real browser (headless Chromium, network off) where every chart must render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backprop_cli.cli import main

from .conftest import CONFIGS, assert_one_line_error, run_cli

pytest.importorskip("altair", reason="the report extra (altair) is not installed")
pytest.importorskip("vl_convert", reason="the report extra (vl-convert-python) is not installed")

from backprop_cli.report import charts, collect, page  # noqa: E402
from backprop_cli.store import rundir  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Short real runs, trained once for this module: {config stem: run dir}."""
    base = tmp_path_factory.mktemp("report-runs")
    dirs = {}
    for stem, extra in (
        ("moons-relu", ["training.epochs=4"]),
        ("iris", ["training.epochs=5"]),
        ("regression", ["training.epochs=3"]),
        ("digits", ["training.epochs=2"]),
        ("vanishing-sigmoid", ["training.epochs=2"]),
    ):
        out = base / stem
        args = ["train", str(CONFIGS / f"{stem}.yaml"), "--quiet", "--out", str(out)]
        assert main([*args, *sum((["--set", s] for s in extra), [])]) == 0
        dirs[stem] = out
    return dirs


MODEL = "model: {layers: [{units: 4}, {units: 2, activation: softmax}]}\n"


def spec_values(spec: dict) -> list[dict]:
    """Every data row a Vega-Lite spec carries (altair puts them in ``datasets``)."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


# ---------------------------------------------------------------------------- the charts' data


def test_curves_hold_every_epoch_of_every_run(runs):
    got = collect.collect([runs["moons-relu"], runs["iris"]])
    spec = charts.curves(got, "loss", "loss")
    rows = pd.DataFrame(spec_values(spec))
    for name in ("moons-relu", "iris"):
        metrics = rundir.read_metrics(runs[name])
        for split in ("train", "val"):
            mine = rows[(rows.run == name) & (rows.split == split)].sort_values("epoch")
            assert mine.epoch.tolist() == [r["epoch"] for r in metrics]
            np.testing.assert_array_equal(mine.value, [r[f"{split}_loss"] for r in metrics])
    assert spec["encoding"]["color"]["field"] == "run"  # overlaid, one colour per run
    assert any(p.get("bind") == "legend" for p in spec.get("params", []))  # pick a run
    assert charts.curves(got[:1], "r2", "R^2") is None  # classification has no R^2


def test_regression_has_r2_curves_and_no_confusion_matrix(runs):
    (run,) = collect.collect([runs["regression"]])
    assert charts.curves([run], "r2", "R^2") is not None
    assert charts.curves([run], "accuracy", "accuracy") is None
    assert run.evaluation is None and charts.confusion(run) is None


def test_gradient_chart_has_each_layer_over_the_epochs(runs):
    (run,) = collect.collect([runs["vanishing-sigmoid"]])
    rows = pd.DataFrame(spec_values(charts.gradients(run)))
    metrics = rundir.read_metrics(runs["vanishing-sigmoid"])
    layers = run.layer_count()
    assert layers == len(run.model.net.W) and rows["index"].nunique() == layers
    for l in range(layers):
        mine = rows[rows["index"] == l].sort_values("epoch")
        np.testing.assert_array_equal(mine.norm, [r[f"grad_norm_{l}"] for r in metrics])
        assert mine.layer.iloc[0] == f"layer {l} ({run.model.net.activation_names[l]})"
    assert charts.gradients(run)["encoding"]["y"]["scale"]["type"] == "log"


def test_confusion_matrix_is_evals(runs, capsys):
    (run,) = collect.collect([runs["iris"]])
    code, out, _ = run_cli(capsys, "eval", "--weights", str(runs["iris"] / "weights.npz"), "--json")
    assert code == 0
    evaluated = json.loads(out.splitlines()[-1])
    cells = spec_values(charts.confusion(run))
    classes = evaluated["classes"]
    grid = [[0] * len(classes) for _ in classes]
    for c in cells:
        grid[classes.index(c["true"])][classes.index(c["predicted"])] = c["rows"]
    assert grid == evaluated["confusion_matrix"]
    assert sum(map(sum, grid)) == evaluated["rows"] == run.summary["test"]["rows"]


def test_decision_regions_are_the_models_predictions(runs):
    import backprop_cli as bp

    (run,) = collect.collect([runs["moons-relu"]])
    cells = pd.DataFrame(spec_values(charts.regions(run)))
    cells = cells[cells.x2.notna()]  # the grid, not the data points
    assert len(cells) == collect.GRID**2
    centres = pd.DataFrame(
        {"x0": (cells.x + cells.x2) / 2, "x1": (cells.y + cells.y2) / 2}
    ).reset_index(drop=True)
    predicted = bp.load(runs["moons-relu"] / "weights.npz").predict(centres)
    assert [str(v) for v in predicted] == cells.value.astype(str).tolist()
    assert set(cells.value.astype(str)) == {"0", "1"}  # both classes have a region
    (iris,) = collect.collect([runs["iris"]])
    assert iris.regions is None and "regions" not in iris.notes  # 4 inputs: no plane


def test_network_drawing_holds_the_weights(runs):
    (run,) = collect.collect([runs["iris"]])
    edges = [r for r in spec_values(charts.network(run)) if "weight" in r]
    W = run.model.net.W
    assert len(edges) == sum(w.size for w in W)  # small enough: every weight is drawn
    names = run.unit_names
    for e in edges[:40]:
        l = next(i for i in range(len(W)) if e["from"] in names[i] and e["to"] in names[i + 1])
        a, b = names[l].index(e["from"]), names[l + 1].index(e["to"])
        assert e["weight"] == pytest.approx(float(W[l][a, b]), abs=1e-7)
    assert names[0] == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    assert names[-1] == ["setosa", "versicolor", "virginica"]


def test_large_layers_show_their_strongest_units(runs):
    (run,) = collect.collect([runs["digits"]])
    sizes = run.model.net.sizes
    assert sizes[0] == 64
    shown = run.layers[0].rows
    assert len(shown) == collect.MAX_UNITS and shown == sorted(shown)
    W = [np.abs(w) for w in run.model.net.W]
    strength = W[0].sum(axis=1)  # an input unit: its weights out
    assert min(strength[shown]) >= max(np.delete(strength, shown))
    heads = [r["text"] for r in spec_values(charts.network(run)) if "text" in r]
    assert heads[0] == f"input ({collect.MAX_UNITS} of 64)"


def test_a_missing_data_file_leaves_a_note_not_an_error(tmp_path, capsys):
    csv = tmp_path / "points.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": np.where(X[:, 0] > 0, "yes", "no")}).to_csv(
        csv, index=False
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{path: {csv}, target: label}}\ntraining: {{epochs: 2}}\n" + MODEL)
    assert main(["train", str(cfg), "--quiet", "--out", "run"]) == 0
    csv.unlink()
    code, _, err = run_cli(capsys, "report", "run")
    assert code == 0, err
    text = Path("run/report.html").read_text()
    assert "no confusion picture" in text and "points.csv" in text
    assert 'data-chart="loss"' in text


# ---------------------------------------------------------------------------- the page


def test_page_is_self_contained_and_escapes_what_it_shows(tmp_path):
    csv = tmp_path / "odd.csv"
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    labels = np.where(X[:, 1] > 0, "</script><b>bold</b>", "plain & <i>")
    pd.DataFrame({"x<1>": X[:, 0], "y": X[:, 1], "label": labels}).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: odd\ndata: {{path: {csv}, target: label}}\ntraining: {{epochs: 2}}\n" + MODEL
    )
    assert main(["train", str(cfg), "--quiet", "--out", "odd"]) == 0
    html = page.render(collect.collect([Path("odd")]))
    assert html.count("</script>") == html.count("<script")  # no label ended a script early
    assert "<b>bold</b>" not in html and "<i>" not in html  # text, never markup
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1", html, flags=re.S)
    assert re.findall(r"<[^>]*\b(?:src|href)=[^>]*>", markup) == []  # nothing loaded from anywhere
    specs = json.loads(re.search(r'id="chart-specs">(.*?)</script>', html, re.S).group(1))
    kinds = re.findall(r'data-chart="(\w+)"', html)
    assert sorted(specs) == sorted(re.findall(r'class="chart" id="(chart-\d+)"', html))
    assert {"loss", "accuracy", "gradients", "confusion", "regions", "network"} <= set(kinds)


def test_report_command_files(runs, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(runs["iris"], run)
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0 and err.strip() == f"wrote {run / 'report.html'}"
    before = (run / "report.html").read_bytes()
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 2
    assert_one_line_error(err, "report.html", "already exists", "--overwrite")
    assert (run / "report.html").read_bytes() == before
    assert run_cli(capsys, "report", str(run), "--overwrite")[0] == 0
    code, _, _ = run_cli(capsys, "report", str(run), str(runs["moons-relu"]))
    assert code == 0 and Path("report.html").is_file()  # several runs: here
    text = Path("report.html").read_text()
    assert text.count('data-chart="network"') == 2 and text.count('data-chart="loss"') == 1
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nowhere"), "--out", "x.html")
    assert code == 2
    assert_one_line_error(err, "nowhere", "not a directory")
    assert not Path("x.html").exists()


def test_train_report_writes_it_at_the_end(capsys):
    code, out, _ = run_cli(
        capsys,
        "train",
        str(CONFIGS / "xor.yaml"),
        "--out",
        "xor",
        "--report",
        "--json",
        "--set",
        "training.epochs=3",
    )
    assert code == 0
    assert json.loads(out.splitlines()[-1]) == {
        "event": "note",
        "message": "report: xor/report.html",
    }
    assert 'data-chart="regions"' in Path("xor/report.html").read_text()


@pytest.mark.parametrize("missing", ["altair", "vl_convert"])
def test_without_the_report_extra(capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError
    code, _, err = run_cli(
        capsys, "train", str(CONFIGS / "xor.yaml"), "--out", "xor", "--report", "--quiet"
    )
    assert code == 2
    package = missing.split(".")[0]
    assert err == f"error: report needs the {package} package: pip install 'backprop-cli[report]'\n"
    assert not Path("xor").exists()  # refused before training, not after it
    code, _, err = run_cli(capsys, "report", "somewhere")
    assert code == 2 and "backprop-cli[report]" in err


# ---------------------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--proxy-server=socks5://127.0.0.1:9",  # the network is off: nothing can be fetched
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=20000",
]


class Charts(HTMLParser):
    """For each ``div.chart``: its kind, whether vega-embed marked it rendered, and how many
    SVG marks it holds; and the body's collected errors."""

    def __init__(self):
        super().__init__()
        self.charts: list[dict] = []
        self.body: dict = {}
        self._stack: list[dict | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        current = next((c for c in reversed(self._stack) if c is not None), None)
        if tag == "div" and "data-chart" in a:
            chart = {"kind": a["data-chart"], "rendered": a.get("data-rendered"), "marks": 0}
            self.charts.append(chart)
            self._stack.append(chart)
            return
        if current is not None and tag in ("path", "rect", "circle", "line", "text", "symbol"):
            current["marks"] += 1
        if tag not in ("path", "rect", "circle", "line", "img", "br", "meta", "input"):
            self._stack.append(None)

    def handle_endtag(self, tag):
        if (
            tag not in ("path", "rect", "circle", "line", "img", "br", "meta", "input")
            and self._stack
        ):
            self._stack.pop()


def browse(html_file: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, *flags, html_file.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked the network for (Chromium's own background requests carry
    no file:// site)."""
    events = json.loads(netlog.read_text())["events"]
    return sorted(
        {
            e["params"]["url"]
            for e in events
            if "url" in e.get("params", {})
            and "file://" in str(e["params"].get("site_for_cookies"))
        }
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_every_chart_renders_in_a_real_browser_with_the_network_off(runs, tmp_path):
    # The detector first: a page that does fetch something is caught.
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="https://example.com/x.png"></body></html>')
    browse(control, f"--log-net-log={tmp_path / 'control.json'}", "--dump-dom")
    assert page_requests(tmp_path / "control.json") == ["https://example.com/x.png"]

    out = tmp_path / "report.html"
    assert (
        main(["report", str(runs["moons-relu"]), str(runs["vanishing-sigmoid"]), "--out", str(out)])
        == 0
    )
    done = browse(out, f"--log-net-log={tmp_path / 'net.json'}", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = Charts()
    parsed.feed(done.stdout)
    assert parsed.body.get("data-done") == "true"  # every embed settled
    assert "data-errors" not in parsed.body, parsed.body.get("data-errors")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no errors, warnings or logs from the page
    assert page_requests(tmp_path / "net.json") == []
    kinds = [c["kind"] for c in parsed.charts]
    assert kinds.count("network") == 2 and kinds.count("gradients") == 2
    assert {"loss", "accuracy", "confusion", "regions"} <= set(kinds)
    for chart in parsed.charts:
        assert chart["rendered"] == "true", chart
        assert chart["marks"] > 5, chart  # drawn, not an empty frame

    shot = tmp_path / "report.png"
    browse(out, f"--screenshot={shot}", "--window-size=1300,2400")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
