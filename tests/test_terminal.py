"""What a person sees at a terminal: `backprop train` driven in a real terminal (tmux, 80x24
and 120x40) keeps every epoch's row in the scrollback, once, and no line is wider than the
terminal; the epoch rows, the summary and the sparklines fitted to a width; the status line
before the first batch; and the live view's rows, written to a terminal console."""

import io
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from rich.console import Console

from backprop_cli.cli import console as console_module
from backprop_cli.cli.console import fmt
from backprop_cli.cli.training_view import (
    SPARK_WIDTH,
    EpochRows,
    TrainingView,
    grad_strip,
    history_lines,
    sparkline,
    summary_lines,
)
from backprop_cli.config import load_config
from backprop_cli.nn import fast, kernel_cache
from backprop_cli.training import Run

from .conftest import CONFIGS, ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def record(epoch: int, layers: int = 2, **values) -> dict:
    """An epoch record as the trainer yields it (classification)."""
    r = {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_accuracy": 0.5 + epoch / 200,
        "val_loss": 1.2 / epoch,
        "val_accuracy": 0.5 + epoch / 250,
        "lr": 0.001,
        "time_s": 0.01,
    }
    r |= {f"grad_norm_{l}": 10.0 ** (l - layers) for l in range(layers)}
    return r | values


# ---------------------------------------------------------------------------- epoch rows


@pytest.mark.parametrize("layers", [2, 9])
@pytest.mark.parametrize("width", [200, 120, 100, 80, 70, 60, 50, 40, 30])
def test_an_epoch_row_and_the_header_never_exceed_the_width(width, layers):
    table = EpochRows(record(1, layers), 100, width)
    lines = [table.header()] + [table.row(record(e, layers)) for e in (1, 10, 100)]
    assert all(line.cell_len <= width for line in lines), [str(t) for t in lines]
    for e, line in zip((1, 10, 100), lines[1:], strict=True):
        assert str(line).lstrip().startswith(f"{e}/100")


def test_what_is_given_up_as_the_width_shrinks_goes_in_order():
    """The gradient range first, then the strip, then the long headers, then time, then lr."""
    seen = []
    for width in range(200, 20, -1):
        table = EpochRows(record(1), 30, width)
        header = str(table.header())
        row = str(table.row(record(1)))
        state = (
            "0.0100..0.1000" in row,  # the range of the two layers' norms
            "grad" in header,
            "train_accuracy" in header,
            "time" in header,
            "lr" in header.split(),
        )
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [
        (True, True, True, True, True),
        (False, True, True, True, True),
        (False, False, True, True, True),
        (False, False, False, True, True),
        (False, False, False, False, True),
        (False, False, False, False, False),
    ]


def test_at_80_columns_the_row_holds_every_metric_and_at_200_the_gradients():
    r = record(7, train_loss=6.452e-05)
    narrow = EpochRows(r, 30, 80)
    cells = str(narrow.row(r)).split()
    header = str(narrow.header()).split()
    assert header == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "time_s",
    ]
    assert cells == ["7/30", "6.452e-05", fmt(r["train_accuracy"]), fmt(r["val_loss"])] + [
        fmt(r["val_accuracy"]),
        "0.0010",
        "0.01s",
    ]
    wide = EpochRows(r, 30, 200)
    row = str(wide.row(r))
    assert row.endswith(f"{grad_strip([0.01, 0.1])} 0.0100..0.1000")
    assert str(wide.header()).endswith("grad norms by layer")


def green(line) -> list[str]:
    return [str(line)[s.start : s.end] for s in line.spans if s.style == "green"]


def test_a_validation_loss_better_than_every_earlier_one_is_green():
    table = EpochRows(record(1), 5, 120)
    losses = [1.0, 0.8, 0.9, 0.7]
    marked = [green(table.row(record(e, val_loss=v))) for e, v in enumerate(losses, 1)]
    assert [[cell.strip() for cell in m] for m in marked] == [
        ["1.0000"],
        ["0.8000"],
        [],
        ["0.7000"],
    ]
    # without a validation split, the train loss
    table = EpochRows(record(1), 5, 120)
    nan = float("nan")
    marked = [
        green(table.row(record(e, val_loss=nan, train_loss=v))) for e, v in [(1, 2.0), (2, 3.0)]
    ]
    assert [[cell.strip() for cell in m] for m in marked] == [["2.0000"], []]


def test_a_value_wider_than_usual_is_cut_not_wrapped():
    table = EpochRows(record(1), 30, 77)  # exactly the full row at 80 columns less 3
    row = table.row(record(2, train_loss=-1.2345e300, val_loss=123456789.0))
    assert row.cell_len <= 77 and str(row).lstrip().startswith("2/30")


# ---------------------------------------------------------------------------- the summary


def rows_of(n: int) -> list[dict]:
    return [record(e, layers=3) for e in range(1, n + 1)]


@pytest.mark.parametrize("width", [200, 120, 80, 60, 45])
def test_summary_lines_fit_the_width(width):
    rows = rows_of(40)
    summary = {
        "stop_reason": "completed",
        "epochs": 40,
        "time_s": 1.5,
        "task": "classification",
        "restored_best": True,
        "best": {k: v for k, v in rows[-1].items() if not k.startswith("grad")},
        "best_by": "val_loss",
        "test": {"rows": 269, "loss": 0.19, "accuracy": 0.98},
        "run_dir": "runs/digits-mlp-2",
    }
    lines = summary_lines(summary, rows, width)
    assert all(len(line) <= width for line in lines), lines
    text = " ".join(" ".join(lines).split())
    for k in ("train_loss 0.0250", "val_accuracy 0.6600", "test (269 rows)", "run: runs/digits"):
        assert k in text
    # where the one-line form does not fit, a line per series, their sparklines equal in width
    [one_line, _] = history_lines(rows)
    loss = [line for line in lines if line.startswith("loss  ")]
    if len(one_line) <= width:
        assert loss == [one_line]
    else:
        train, val = loss[0], next(line for line in lines if line.lstrip().startswith("val "))
        n = len(re.search("[▁-█]+", train).group())
        assert n == len(re.search("[▁-█]+", val).group()) <= SPARK_WIDTH
        assert sparkline([r["train_loss"] for r in rows], n, log=True) in train
        assert sparkline([r["val_loss"] for r in rows], n, log=True) in val


def test_without_a_width_the_summary_lines_are_the_plain_ones():
    rows = rows_of(30)
    [loss, grads] = history_lines(rows)
    assert loss.startswith("loss  train ") and " val " in loss and loss.endswith("(log scale)")
    assert sparkline([r["train_loss"] for r in rows], log=True) in loss
    assert grads.endswith("(last epoch's gradient norm by layer, first layer left)")


# ---------------------------------------------------------------------------- the live view


def printed_lines(raw: str) -> list[str]:
    """The lines a terminal keeps of Rich's output: each line as left after the last
    carriage return + erase-line (the live bar is drawn, then erased, on the line a row is
    printed over), without the bar itself."""
    lines = [ANSI.sub("", part.split("\r\x1b[2K")[-1]) for part in raw.split("\n")]
    return [line for line in lines if line.strip() and "batches" not in line]


def test_the_live_view_prints_every_epoch_row_once_above_the_bar():
    buf = io.StringIO()
    con = Console(file=buf, width=80, force_terminal=True, color_system=None)
    rows = [record(e) for e in range(1, 41)]
    with TrainingView("live", 40, console=con) as view:
        for r in rows:
            for b in (1, 2, 3):
                view.batch(b, 3)
            view.epoch(r)
    lines = printed_lines(buf.getvalue())
    assert lines[0].split()[:3] == ["epoch", "train_loss", "train_accuracy"]
    assert len(lines) == 41
    for r, line in zip(rows, lines[1:], strict=True):
        assert line.split()[:2] == [f"{r['epoch']}/40", fmt(r["train_loss"])]
        assert len(line) <= 80


def test_a_warning_goes_below_its_row_wrapped_and_the_header_again():
    buf = io.StringIO()
    con = Console(file=buf, width=60, force_terminal=True, color_system=None)
    long = "vanishing gradients: " + "word " * 40
    with TrainingView("live", 3, console=con) as view:
        view.epoch(record(1))
        view.epoch(record(2, warnings=[long]))
        view.epoch(record(3))
    lines = printed_lines(buf.getvalue())
    first = [line.split()[0] for line in lines]
    assert first[:4] == ["epoch", "1/3", "2/3", "warning:"]
    assert first[-2:] == ["epoch", "3/3"]  # the header again, after the warning
    warning = lines[3:-2]
    assert " ".join(" ".join(warning).split()) == f"warning: {' '.join(long.split())}"
    assert len(warning) > 1 and all(len(line) <= 60 for line in warning)
    assert all(line.startswith("  word") for line in warning[1:])


# ---------------------------------------------------------------------------- the status line


def test_status_is_nothing_off_a_terminal(capsys):
    with console_module.status("plain", "loading") as say:
        say("building")
    with console_module.status("json", "loading") as say:
        say("building")
    assert capsys.readouterr() == ("", "")


def test_status_shows_on_a_terminal():
    buf = io.StringIO()
    con = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with console_module.status("live", "reading the config", console=con) as say:
        say("loading the data (\x1b[2Jdigits)")
    out = buf.getvalue()
    assert "loading the data (\\x1b[2Jdigits)" in out and "\x1b[2J" not in out


@pytest.mark.parametrize("cached", [True, False])
def test_the_run_says_what_it_is_doing_until_training_starts(monkeypatch, cached):
    stages = []
    monkeypatch.delenv("BACKPROP_FAST", raising=False)
    monkeypatch.setattr(kernel_cache, "cached", lambda: cached)
    monkeypatch.setattr(fast, "_lib", None)  # not loaded yet in this process
    cfg = load_config(CONFIGS / "iris.yaml", None)
    Run(cfg, "iris.yaml", on_stage=stages.append)
    compiling = ["compiling the C kernels (once; they are cached)"]
    assert stages == ["loading the data (iris)", "building the network"] + (
        [] if cached else compiling
    )


# ---------------------------------------------------------------------------- a real terminal

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(
    TMUX is None, reason="tmux is not on PATH: these tests drive backprop train in a terminal"
)


def run_in_tmux(tmp_path, width: int, height: int, *args: str) -> tuple[int, list[str]]:
    """(exit code, every line of the pane's scrollback and screen, wrapped lines joined) of
    `backprop ARGS` run in a tmux terminal of width x height, with this checkout's code."""
    socket = tmp_path / "tmux.sock"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g history-limit 50000\nset -g status off\n")
    done = tmp_path / "exit-code"
    script = tmp_path / "run.sh"
    env_lines = [f"export PYTHONPATH={ROOT}"]
    if "BACKPROP_CACHE_DIR" in os.environ:
        env_lines.append(f"export BACKPROP_CACHE_DIR={os.environ['BACKPROP_CACHE_DIR']}")
    words = " ".join(f"'{a}'" for a in args)
    script.write_text(
        "unset COLUMNS LINES\n"  # the terminal's own size, not the test session's
        + "\n".join(env_lines)
        + f"\ncd {tmp_path}\n'{sys.executable}' -m backprop_cli {words}\n"
        + f"echo $? > {done}.tmp && mv {done}.tmp {done}\nexec sleep 600\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    tmux = [TMUX, "-S", str(socket), "-f", str(conf)]
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", str(width), "-y", str(height), f"sh {script}"],
        env=env,
        check=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.exists(), "backprop train did not finish in the terminal"
        while True:  # until tmux has drawn the last line written
            capture = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if re.search(r"^run: ", capture, re.M) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
    return int(done.read_text()), capture.rstrip("\n").split("\n")


@needs_tmux
@pytest.mark.parametrize("width, height, epochs", [(80, 24, 40), (120, 40, 60), (200, 50, 70)])
def test_every_epoch_stays_in_the_scrollback_and_nothing_wraps(tmp_path, width, height, epochs):
    code, lines = run_in_tmux(
        tmp_path,
        width,
        height,
        "train",
        str(CONFIGS / "iris.yaml"),
        "--set",
        f"training.epochs={epochs}",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, "\n".join(lines)
    assert epochs > height  # more rows than the screen has lines
    rows = [line for line in lines if re.match(rf"^ *\d+/{epochs} ", line)]
    assert [int(line.split("/")[0]) for line in rows] == list(range(1, epochs + 1))
    long = [line for line in lines if len(line) > width]
    assert long == []  # joined (-J), a wrapped line would be longer than the terminal
    header = [line for line in lines if line.split()[:2] == ["epoch", "train_loss"]]
    assert len(header) == 1 and lines.index(header[0]) < lines.index(rows[0])
    assert any(line.startswith(f"stopped: completed after {epochs} epoch(s)") for line in lines)
    assert not [line for line in lines if "batches" in line]  # the bar is gone
    assert any(line.startswith("loss  train ") for line in lines)  # the sparklines
    if width >= 120:
        assert "grad norms by layer" in header[0]  # room for the gradients
