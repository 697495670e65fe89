"""What a person sees (issue 16): output that is never cut when it goes to a file or a pipe,
tables that still fit a terminal, text that wraps between words."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from .conftest import CONFIGS, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Longer than 80 columns on its own: cut or folded by a table 80 columns wide.
LONG_RUN = "a-run-with-a-name-long-enough-that-an-eighty-column-table-has-to-cut-or-fold-it"
LONG_CLASSES = [
    "iris setosa as the botanist wrote it down in the field notebook",
    "iris versicolor as the botanist wrote it down in the field notebook",
    "iris virginica as the botanist wrote it down in the field notebook",
]
LONG_COLUMN = "sepal_length_in_centimetres_measured_with_the_calipers_from_the_drawer"
CSV_CONFIG = """name: long-names
seed: 0
data: {path: flowers.csv, target: species, validation: 0.2, test: 0.2}
model:
  layers: [{units: 8, activation: tanh}, {units: 3, activation: softmax}]
loss: cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 2, batch_size: 16}
"""

SWEEP = f"""\
base: {CONFIGS / "iris.yaml"}
set: {{training.epochs: 1}}
grid: {{optimizer.lr: [0.1, 0.01]}}
output: {{dir: runs/grid}}
"""


def _backprop(*args, env=None):
    """The CLI in a child process, stdout and stderr pipes (never a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "backprop_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture
def at_80_columns(monkeypatch):
    """The width a Rich console falls back to when stdout is not a terminal."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def terminal(monkeypatch):
    """stdout is a terminal 60 columns wide (Rich reads the width from COLUMNS)."""
    from backprop_cli.cli import SafeStdout

    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(SafeStdout, "isatty", lambda self: True)


@pytest.fixture
def long_names(tmp_path):
    """A CSV whose feature column and class labels are longer than 80 columns wide tables
    allow, and a run trained on it: its weights file."""
    rng = np.random.default_rng(0)
    species = np.repeat(LONG_CLASSES, 30)
    frame = pd.DataFrame(
        {
            LONG_COLUMN: rng.normal(size=90) + np.repeat([0.0, 2.0, 4.0], 30),
            "petal": rng.normal(size=90),
            "species": species,
        }
    )
    frame.to_csv(tmp_path / "flowers.csv", index=False)
    (tmp_path / "flowers.yaml").write_text(CSV_CONFIG)
    code = _backprop("train", tmp_path / "flowers.yaml", "--out", tmp_path / "run", "-q")
    assert code.returncode == 0, code.stderr
    return tmp_path / "run" / "weights.npz"


def _uncut(out: str) -> None:
    assert "…" not in out and "..." not in out


# ---------------------------------------------------------------------------- full width


def test_runs_through_a_pipe_has_every_column_and_whole_names(tmp_path):
    """`backprop runs | cat` dropped the time column and cut names (sweeps/iris/t)."""
    name = f"sweeps/iris/{LONG_RUN}"
    done = _backprop(
        "train", CONFIGS / "iris.yaml", "--out", f"runs/{name}", "-q", "-s", "training.epochs=1"
    )
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = _backprop("runs", env=env)
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if "name" in line)
    assert header.split() == ["name", "date", "epochs", "val", "loss", "val", "acc", "stop", "time"]
    row = next(line for line in proc.stdout.splitlines() if LONG_RUN in line)
    assert row.split()[0] == name and row.split()[-2:] == ["completed", row.split()[-1]]
    assert re.fullmatch(r"\d+\.\ds", row.split()[-1])  # the time column
    _uncut(proc.stdout)


def test_gradcheck_into_a_file_has_whole_loss_names(capsys, at_80_columns):
    code, out, err = run_cli(capsys, "gradcheck")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "binary_cross_entropy" in line]
    assert rows and all("│ ok" in line for line in rows)
    assert "cross_entropy (weighted)" in out and "max rel error" in out and "status" in out
    _uncut(out)


def test_eval_into_a_file_has_whole_class_names(capsys, at_80_columns, long_names):
    code, out, err = run_cli(capsys, "eval", "--weights", long_names)
    assert code == 0, err
    lines = out.splitlines()
    confusion = lines[next(i for i, line in enumerate(lines) if "confusion matrix" in line) + 1 :]
    header = next(line for line in confusion if LONG_CLASSES[0] in line)
    assert all(c in header for c in LONG_CLASSES)  # every predicted class, one header line
    for c in LONG_CLASSES:
        assert sum(line.count(c) for line in lines) == 3  # per class; the matrix's row and column
    _uncut(out)


def test_validate_into_a_file_has_whole_column_names(capsys, at_80_columns, long_names, tmp_path):
    code, out, err = run_cli(capsys, "validate", tmp_path / "flowers.yaml")
    assert code == 0, err
    row = next(line for line in out.splitlines() if LONG_COLUMN in line and "│" in line)
    assert row.split("│")[1].strip() == LONG_COLUMN and row.split("│")[2].strip() == "numeric"
    _uncut(out)


def test_validate_into_a_file_does_not_fold_the_config(capsys, at_80_columns, long_names, tmp_path):
    """The resolved config is YAML dumped without folding at 80 columns: a path that YAML has to
    quote (': ') stays whole, on its line."""
    name = "flowers: measured in the field by the botanist on a rainy day in the spring of 1936.csv"
    (tmp_path / "flowers.csv").rename(tmp_path / name)
    (tmp_path / "flowers.yaml").write_text(CSV_CONFIG.replace("flowers.csv", f"'{name}'"))
    code, out, err = run_cli(capsys, "validate", tmp_path / "flowers.yaml")
    assert code == 0, err
    assert f"  path: '{name}'\n" in out


def test_sweep_into_a_file_has_whole_lines(capsys, at_80_columns, tmp_path):
    sweep = SWEEP.replace("runs/grid", f"runs/{LONG_RUN}").replace("[0.1, 0.01]", "[0.1]")
    (tmp_path / "grid.yaml").write_text(sweep)
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--workers", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("trial-000  optimizer.lr=0.1  completed") for line in lines)
    assert f"runs/{LONG_RUN}/trial-000" in out
    assert f"summary: runs/{LONG_RUN}/sweep_summary.csv" in lines
    _uncut(out)


def test_datasets_into_a_file_has_every_column(capsys, monkeypatch):
    from backprop_cli.data import describe_builtins

    monkeypatch.setenv("COLUMNS", "40")  # a file is as wide as the table, whatever COLUMNS says
    code, out, err = run_cli(capsys, "datasets")
    assert code == 0, err
    cells = [
        [c.strip() for c in re.split("[│┃]", line)[1:-1]]
        for line in out.splitlines()
        if line[:1] in "│┃"
    ]
    assert cells[0] == ["name", "rows", "features", "task", "classes", "kind"]
    assert [row[0] for row in cells[1:]] == [d["name"] for d in describe_builtins()]
    assert [row[5] for row in cells[1:]] == [d["kind"] for d in describe_builtins()]
    _uncut(out)


def test_trace_into_a_file_is_not_wrapped(capsys, at_80_columns):
    code, out, err = run_cli(
        capsys, "trace", CONFIGS / "iris.yaml", "-s", "model.layers[0].units=4"
    )
    assert code == 0, err
    assert (
        "layers are counted from 0 (docs/backpropagation.md); a^(-1) = x, the input rows; "
        "W^l is (fan_in, fan_out), the column-vector convention's matrix transposed, so "
        "z^l = a^(l-1) W^l + b^l\n" in out
    )
    assert max(len(line) for line in out.splitlines()) > 80
    _uncut(out)


def test_on_a_terminal_tables_fit_it(capsys, terminal):
    code, out, err = run_cli(capsys, "gradcheck")
    assert code == 0, err
    lines = ANSI.sub("", out).splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "…" in out  # cells cut to fit, as on a terminal before


def test_on_a_terminal_trace_text_wraps_between_words(capsys, terminal):
    code, out, err = run_cli(capsys, "trace", CONFIGS / "iris.yaml")
    assert code == 0, err
    lines = ANSI.sub("", out).splitlines()
    assert max(len(line) for line in lines) <= 60
    start = next(i for i, line in enumerate(lines) if line.startswith("layers are counted"))
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith("b^l"))
    sentence = (
        "layers are counted from 0 (docs/backpropagation.md); a^(-1) = x, the input rows; "
        "W^l is (fan_in, fan_out), the column-vector convention's matrix transposed, so "
        "z^l = a^(l-1) W^l + b^l"
    )
    assert end > start  # wrapped, and every word whole
    assert " ".join(lines[start : end + 1]).split() == sentence.split()


# ---------------------------------------------------------------------------- help


def _commands() -> dict:
    import typer

    from backprop_cli.cli import app

    return typer.main.get_command(app).commands


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_natural_usage_line_and_an_example(capsys, name):
    code, out, err = run_cli(capsys, name, "--help")
    assert code == 0, err
    usage = out.splitlines()[0]
    assert usage.startswith(f"Usage: backprop {name} [OPTIONS]")
    for junk in ("{", "[[", "<list", "<path>", "<str>", "<int>", "<float>"):
        assert junk not in out, junk
    lines = out.splitlines()
    example = lines[lines.index("Example:") + 1]
    assert example.startswith(f"  backprop {name} ")  # as written: one line, not reflowed


def test_usage_lines_name_the_arguments(capsys):
    usages = {}
    for name in _commands():
        code, out, _ = run_cli(capsys, name, "--help")
        usages[name] = out.splitlines()[0].removeprefix(f"Usage: backprop {name} ")
    assert usages == {
        "train": "[OPTIONS] CONFIG...",
        "eval": "[OPTIONS]",
        "predict": "[OPTIONS]",
        "export": "[OPTIONS]",
        "gradcheck": "[OPTIONS] [CONFIG...]",
        "validate": "[OPTIONS] CONFIG...",
        "datasets": "[OPTIONS]",
        "trace": "[OPTIONS] CONFIG...",
        "plot": "[OPTIONS] RUN_DIR...",
        "report": "[OPTIONS] RUN_DIR...",
        "runs": "[OPTIONS] [DIR]",
        "schema": "[OPTIONS]",
        "sweep": "[OPTIONS] SWEEP",
    }


def test_one_vocabulary_for_options():
    """--data for rows read, --out for anything written, --weights for a weights file: no
    command shows another name for them (the old ones are hidden)."""
    shown = {
        name: {opt for p in command.params if not p.hidden for opt in p.opts}
        for name, command in _commands().items()
    }
    everything = set().union(*shown.values())
    assert not everything & {"--input", "-i", "--output", "--init-from", "--model", "--file"}
    for name in ("train", "export", "plot", "report", "schema", "sweep", "predict"):
        assert {"--out", "-o"} <= shown[name], name
    for name in ("train", "eval", "predict", "export", "trace"):
        assert {"--weights", "-w"} <= shown[name], name
    for name in ("eval", "predict"):
        assert "--data" in shown[name], name


@pytest.mark.parametrize("name", sorted(_commands()))
def test_json_means_json_lines_in_every_help(capsys, name):
    code, out, _ = run_cli(capsys, name, "--help")
    if "--json" in out:
        assert " ".join(out.split()).count("JSON Lines (one object per line)") == 1


# ---------------------------------------------------------------------------- --json


@pytest.fixture(scope="module")
def iris_weights(tmp_path_factory):
    """A short iris run, trained once for the module: its weights file."""
    from backprop_cli.cli import main

    out = tmp_path_factory.mktemp("iris") / "run"
    args = ["train", str(CONFIGS / "iris.yaml"), "-q", "--out", str(out), "-s", "training.epochs=2"]
    assert main(args) == 0
    return out / "weights.npz"


def _json_commands(weights) -> dict[str, list]:
    return {
        "train": ["train", CONFIGS / "xor.yaml", "-s", "training.epochs=2"],
        "eval": ["eval", "--weights", weights],
        "gradcheck": ["gradcheck", CONFIGS / "xor.yaml"],
        "validate": ["validate", CONFIGS / "iris.yaml"],
        "datasets": ["datasets"],
        "trace": ["trace", CONFIGS / "xor.yaml", "--rows", "2"],
        "runs": ["runs", weights.parent.parent],
        "sweep": ["sweep", "grid.yaml", "--workers", "1"],
    }


def test_every_json_output_is_json_lines(capsys, tmp_path, iris_weights):
    """Each line of every command's --json output is one JSON object, alone on stdout."""
    (tmp_path / "grid.yaml").write_text(SWEEP)
    commands = _json_commands(iris_weights)
    with_json = {n for n, c in _commands().items() for p in c.params if "--json" in p.opts}
    assert set(commands) == with_json  # a new --json command is checked here too
    for name, args in commands.items():
        code, out, err = run_cli(capsys, *args, "--json")
        assert code == 0, (name, err)
        lines = out.splitlines()
        assert lines, name
        for line in lines:
            assert isinstance(json.loads(line), dict), (name, line[:80])


# ---------------------------------------------------------------------------- old names


def _note(old: str, new: str) -> str:
    return f"note: {old} is now {new} (the old name goes in 0.3.0)\n"


IRIS_ROWS = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


def test_predict_old_names_still_work_with_a_note(capsys, tmp_path, iris_weights):
    (tmp_path / "new.csv").write_text(IRIS_ROWS)
    w = iris_weights
    code, expected, err = run_cli(capsys, "predict", "-w", w, "--data", "new.csv", "--proba")
    assert code == 0 and err == "" and expected.startswith("prediction,")
    for flag in ("--input", "-i"):
        code, out, err = run_cli(capsys, "predict", "-w", w, flag, "new.csv", "--proba")
        assert (code, out, err) == (0, expected, _note("--input", "--data"))
    code, out, err = run_cli(capsys, "predict", "-w", w, "--data", "new.csv", "--output", "p.csv")
    assert code == 0 and out == ""
    assert err.startswith(_note("--output", "--out")) and "wrote 2 predictions to p.csv" in err
    assert (tmp_path / "p.csv").read_text().startswith("prediction\n")


def test_train_init_from_still_works_with_a_note(capsys, tmp_path, iris_weights):
    args = ["train", CONFIGS / "iris.yaml", "-s", "training.epochs=1", "--json"]
    code, out, err = run_cli(capsys, *args, "--init-from", iris_weights, "--out", "old")
    assert code == 0 and err == _note("--init-from", "--weights")
    code, new, err = run_cli(capsys, *args, "--weights", iris_weights, "--out", "new")
    assert code == 0 and err == ""
    first = [
        json.loads(line)["train_loss"] for line in (out, new) for line in line.splitlines()[:1]
    ]
    assert first[0] == first[1]  # the same start: the file's parameters


def test_export_positional_weights_still_works_with_a_note(capsys, tmp_path, iris_weights):
    pytest.importorskip("safetensors")
    args = ["export", "-f", "safetensors"]
    code, _, err = run_cli(capsys, *args, iris_weights, "--out", "old.safetensors")
    assert code == 0
    assert err.startswith(_note("export WEIGHTS", "export --weights WEIGHTS"))
    code, _, err = run_cli(capsys, *args, "--weights", iris_weights, "--out", "new.safetensors")
    assert code == 0 and not err.startswith("note")
    assert (tmp_path / "old.safetensors").read_bytes() == (
        tmp_path / "new.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    "args, words",
    [
        (["predict", "-w", "W", "--data", "a.csv", "--input", "b.csv"], ["--input", "--data"]),
        (
            ["predict", "-w", "W", "--out", "a.csv", "--output", "b.csv", "--data", "x"],
            ["--output"],
        ),
        (["predict", "-w", "W"], ["Missing option", "--data"]),
        (["train", "c.yaml", "--weights", "W", "--init-from", "W"], ["--init-from", "--weights"]),
        (["export", "W", "--weights", "W"], ["export WEIGHTS", "--weights"]),
        (["export"], ["Missing option", "--weights"]),
    ],
)
def test_old_and_new_name_at_once_or_neither_is_one_error_line(capsys, args, words, iris_weights):
    from .conftest import assert_one_line_error

    args = [str(iris_weights) if a == "W" else a for a in args]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)


# ---------------------------------------------------------------------------- pipes


def test_eval_into_head_exits_0_without_a_message(tmp_path, iris_weights):
    """`eval ... | head -1` used to exit 1 with no message."""
    evaluate = subprocess.Popen(
        [sys.executable, "-m", "backprop_cli", "eval", "--weights", str(iris_weights)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.run(["head", "-1"], stdin=evaluate.stdout, capture_output=True, text=True)
    evaluate.stdout.close()
    err = evaluate.stderr.read().decode()
    evaluate.stderr.close()
    assert evaluate.wait() == 0 and err == ""
    assert head.stdout.startswith("dataset iris (test split")


def test_force_color_in_a_log_still_gets_plain_lines(capsys, monkeypatch):
    """FORCE_COLOR makes Rich treat a pipe as a terminal; the output mode asks stdout itself,
    so a CI log gets one line per epoch, not a live display redrawn into the log."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    code, out, _ = run_cli(
        capsys, "train", str(CONFIGS / "xor.yaml"), "--out", "x", "--set", "training.epochs=3"
    )
    assert code == 0
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
