"""Tracking in MLflow (the mlflow extra): what a run logs is read back through MlflowClient
from a real local store and compared with the run directory, the source of truth: params
with config.yaml, each metric's history with metrics.csv, artifacts byte for byte, tags with
summary.json. A sweep is a parent run with a nested run per trial. A tracker that fails is
one warning, and the run's files and exit code are as without it. Without MLflow, --mlflow
is one error line before training. And the DVC example names only files a run writes."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from .conftest import CONFIGS, ROOT, json_lines, run_cli

IRIS = CONFIGS / "iris.yaml"
HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None
HAVE_SQL = all(importlib.util.find_spec(m) for m in ("sqlalchemy", "alembic"))
needs_mlflow = pytest.mark.skipif(
    not HAVE_MLFLOW, reason="the mlflow extra is not installed (pip install '.[mlflow]')"
)
# MLflow's local store: SQLite, its recommended one (MLflow 3 refuses a plain directory unless
# MLFLOW_ALLOW_FILE_STORE is set); mlflow-skinny alone has no SQLAlchemy for it.
needs_store = pytest.mark.skipif(
    not (HAVE_MLFLOW and HAVE_SQL), reason="a local MLflow store needs the full mlflow package"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module (creating its tables takes a second or two); each test
    logs to experiments of its own name."""
    return "sqlite:///" + str(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


@pytest.fixture
def tracking(store, monkeypatch, request, capsys):
    """MLFLOW_TRACKING_URI set to the store, an experiment named after the test; the client."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", request.node.name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    from mlflow import MlflowClient

    client = MlflowClient(store)
    client.search_experiments()  # the store's tables made now, MLflow's notes on that dropped
    capsys.readouterr()
    return client


def runs_of(client, name: str) -> list:
    """The runs of experiment ``name``, oldest first."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def flattened(value, prefix: str = "") -> dict[str, str]:
    """A YAML mapping as dotted keys (list items by index); text as it is, the rest as JSON."""
    if isinstance(value, dict) and value:
        return {
            k: v
            for key, item in value.items()
            for k, v in flattened(item, f"{prefix}{key}.").items()
        }
    if isinstance(value, list) and value:
        return {
            k: v
            for i, item in enumerate(value)
            for k, v in flattened(item, f"{prefix}{i}.").items()
        }
    return {prefix[:-1]: value if isinstance(value, str) else json.dumps(value)}


def csv_columns(path: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv read with the csv module: each column but epoch as (epoch, value) pairs,
    the empty cells (NaN) left out."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        c: [(int(r["epoch"]), float(r[c])) for r in rows if r[c] != ""]
        for c in rows[0]
        if c != "epoch"
    }


def check_run_against_its_directory(client, mlrun, run_dir: Path, **changed: str) -> None:
    """The MLflow run is the run directory: params, every metric step, files, tags.
    ``changed``: params that differ from config.yaml (a resume's new training.epochs)."""
    rid = mlrun.info.run_id
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert mlrun.data.params == flattened(config) | changed
    columns = csv_columns(run_dir / "metrics.csv")
    for column, expected in columns.items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(rid, column))
        assert history == expected, column
    summary = json.loads((run_dir / "summary.json").read_text())
    tags = mlrun.data.tags
    assert tags["backprop.seed"] == str(summary["seed"])
    assert tags["backprop.stop_reason"] == summary["stop_reason"]
    assert tags["backprop.config_sha256"] == summary["config_sha256"]
    assert tags["backprop.run_dir"] == summary["run_dir"]
    for name in ("backprop", "numpy", "python"):
        key = "backprop.version" if name == "backprop" else f"backprop.{name}_version"
        assert tags[key] == summary["versions"][name]
    assert mlrun.info.run_name == run_dir.name
    for k, v in summary["test"].items():
        if isinstance(v, float) and k != "rows":
            assert mlrun.data.metrics[f"test_{k}"] == v, k
    # The run's files but the checkpoint (it resumes from the run directory), byte for byte.
    logged = {a.path for a in client.list_artifacts(rid)}
    on_disk = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    assert logged == on_disk - {"checkpoint.npz"}
    local = Path(client.download_artifacts(rid, "", str(run_dir.parent / f"dl-{rid}")))
    for name in logged:
        assert (local / name).read_bytes() == (run_dir / name).read_bytes(), name


@needs_store
def test_a_tracked_run_is_its_run_directory(capsys, tmp_path, tracking, request):
    code, out, err = run_cli(
        capsys, "train", IRIS, "--out", "iris", "--mlflow", "--json", "--set", "training.epochs=12"
    )
    assert code == 0, err
    assert err == ""  # MLflow's own notes (creating its tables, ...) are not the command's output
    assert json_lines(out)[-1]["event"] == "summary"  # stdout is still JSON Lines alone
    (mlrun,) = runs_of(tracking, request.node.name)
    assert mlrun.info.status == "FINISHED"
    check_run_against_its_directory(tracking, mlrun, tmp_path / "iris")
    params = mlrun.data.params  # the keys as the issue names them, against the config by hand
    assert params["optimizer.lr"] == "0.01" and params["model.layers.0.units"] == "16"
    assert params["model.layers.1.activation"] == "softmax" and params["data.path"] == "null"
    assert len(tracking.get_metric_history(mlrun.info.run_id, "val_loss")) == 12


@needs_store
def test_the_variable_turns_tracking_on_and_no_mlflow_off(capsys, tracking, request, monkeypatch):
    code, _, err = run_cli(capsys, "train", IRIS, "-o", "a", "-q", "--set", "training.epochs=2")
    assert code == 0 and err == ""
    assert len(runs_of(tracking, request.node.name)) == 1
    code, _, err = run_cli(
        capsys, "train", IRIS, "-o", "b", "-q", "--no-mlflow", "--set", "training.epochs=2"
    )
    assert code == 0 and err == ""
    assert len(runs_of(tracking, request.node.name)) == 1
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")  # the experiment is then the config's name
    run_cli(capsys, "train", IRIS, "-o", "c", "-q", "--set", "training.epochs=2")
    assert [r.info.run_name for r in runs_of(tracking, "iris")] == ["c"]


@needs_store
def test_the_report_is_logged_with_the_run(capsys, tmp_path, tracking, request):
    pytest.importorskip("altair", reason="the report extra")
    pytest.importorskip("vl_convert", reason="the report extra")
    code, _, err = run_cli(
        capsys, "train", IRIS, "-o", "r", "-q", "--report", "--set", "training.epochs=3"
    )
    assert code == 0, err
    (mlrun,) = runs_of(tracking, request.node.name)
    assert "report.html" in {a.path for a in tracking.list_artifacts(mlrun.info.run_id)}
    check_run_against_its_directory(tracking, mlrun, tmp_path / "r")


@needs_store
def test_a_resumed_run_is_a_new_mlflow_run_of_every_epoch(capsys, tmp_path, tracking, request):
    args = ("train", IRIS, "-o", "r", "-q", "--set")
    assert run_cli(capsys, *args, "training.epochs=3")[0] == 0
    assert run_cli(capsys, *args, "training.epochs=5", "--resume")[0] == 0
    first, second = runs_of(tracking, request.node.name)
    assert len(tracking.get_metric_history(first.info.run_id, "train_loss")) == 3
    assert second.data.tags["backprop.resumed_from_epoch"] == "3"
    # config.yaml stays the run's first; the params are the config that trained it to the end
    params = {"training.epochs": "5"}
    check_run_against_its_directory(tracking, second, tmp_path / "r", **params)


@needs_store
def test_a_sweep_is_a_parent_run_with_a_nested_run_per_trial(capsys, tmp_path, tracking, request):
    (tmp_path / "grid.yaml").write_text(
        f"base: {IRIS}\nset: {{training.epochs: 3}}\n"
        "grid:\n  optimizer.lr: [0.1, 0.01]\nmetric: val_loss\n"
    )
    code, out, err = run_cli(
        capsys, "sweep", "grid.yaml", "-o", "sw", "-j", "2", "--mlflow", "--json"
    )
    assert code == 0, err
    runs = runs_of(tracking, request.node.name)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if r is not parent), key=lambda r: r.info.run_name)
    assert [c.info.run_name for c in children] == ["trial-000", "trial-001"]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    for child in children:
        assert child.info.status == "FINISHED"
        check_run_against_its_directory(tracking, child, tmp_path / "sw" / child.info.run_name)
    tags = parent.data.tags
    assert tags["backprop.sweep_file"] == str(tmp_path / "grid.yaml")
    assert tags["backprop.metric"] == "val_loss" and parent.info.status == "FINISHED"
    summary = json_lines(out)[-1]
    assert tags["backprop.best_trial"] == summary["best"]["trial"]
    assert parent.data.metrics["best_val_loss"] == summary["best"]["score"]
    assert {a.path for a in tracking.list_artifacts(parent.info.run_id)} == {
        "sweep.yaml",
        "sweep_summary.csv",
    }


@needs_store
def test_the_mlflow_status_follows_how_the_run_stopped(capsys, tmp_path, tracking, request):
    """Interrupted: KILLED, with the saved epochs and files; diverged: FAILED (exit 3)."""
    from backprop_cli.config import load_config
    from backprop_cli.training import Run
    from backprop_cli.training.tracking import Target, tracked

    run = Run(load_config(IRIS, ["training.epochs=10"]), str(IRIS), out="stopped")
    run.start()
    with pytest.raises(KeyboardInterrupt), tracked(run, Target()) as tracker:
        for record in run.epochs(should_stop=lambda: len(run.rows) >= 3):
            tracker.epoch(record)
    code, _, err = run_cli(
        capsys,
        *("train", CONFIGS / "regression.yaml", "-o", "diverged", "-q", "--mlflow"),
        *("--set", "optimizer=sgd", "--set", "optimizer.lr=1000"),
    )
    assert code == 3 and err.startswith("error: training diverged") and err.count("\n") == 1
    stopped, diverged = runs_of(tracking, request.node.name)
    assert stopped.info.status == "KILLED"
    check_run_against_its_directory(tracking, stopped, tmp_path / "stopped")
    assert stopped.data.tags["backprop.stop_reason"] == "interrupted"
    assert len(tracking.get_metric_history(stopped.info.run_id, "train_loss")) == 3
    assert diverged.info.status == "FAILED"
    assert diverged.data.tags["backprop.stop_reason"] == "diverged"
    logged = {a.path for a in tracking.list_artifacts(diverged.info.run_id)}
    assert logged == {"config.yaml", "summary.json", "weights.npz"}  # no epoch completed


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same_run_files(a: Path, b: Path) -> None:
    """Two runs of one config, one tracked and one not: the same files, the same numbers."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    if "metrics.csv" in names:  # a run diverging in its first epoch has none
        ca, cb = csv_columns(a / "metrics.csv"), csv_columns(b / "metrics.csv")
        ca.pop("time_s"), cb.pop("time_s")
        assert ca == cb
    with np.load(a / "weights.npz") as wa, np.load(b / "weights.npz") as wb:
        assert sorted(wa.files) == sorted(wb.files)
        assert all(np.array_equal(wa[k], wb[k]) for k in wa.files if k != "spec")
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["stop_reason"] == sb["stop_reason"] and sa["final"].get("epoch") == sb["final"].get(
        "epoch"
    )


@needs_mlflow
@pytest.mark.parametrize(
    "uri",
    [
        "closed-port",  # an http server that is not there (no retries, 1 s timeout)
        "file-under-a-file",  # a file store whose directory cannot be made
        "nonsense://here",  # a scheme MLflow does not know
    ],
)
@pytest.mark.parametrize("diverge", [False, True])
def test_a_failing_tracker_is_one_warning_and_changes_nothing(
    capsys, tmp_path, monkeypatch, uri, diverge
):
    (tmp_path / "afile").write_text("not a directory\n")
    uri = {
        "closed-port": f"http://127.0.0.1:{closed_port()}",
        "file-under-a-file": (tmp_path / "afile" / "mlruns").as_uri(),
    }.get(uri, uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    config = CONFIGS / ("regression.yaml" if diverge else "iris.yaml")
    sets = ["optimizer=sgd", "optimizer.lr=1000"] if diverge else []
    args = [a for s in [*sets, "training.epochs=4"] for a in ("--set", s)]
    plain = run_cli(capsys, "train", config, "-o", "plain", "-q", *args)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, out, err = run_cli(capsys, "train", config, "-o", "tracked", "-q", "--mlflow", *args)
    assert code == plain[0] == (3 if diverge else 0)
    lines = err.splitlines()
    assert lines[0].startswith("warning: mlflow: cannot start the run: ") and "Traceback" not in err
    assert lines[1:] == plain[2].splitlines()  # the divergence's own error line, if any
    same_run_files(tmp_path / "plain", tmp_path / "tracked")


@needs_store
def test_a_failure_at_the_end_keeps_what_was_logged(capsys, tmp_path, tracking, request):
    """The artifacts cannot be stored (their directory is under a file): one warning, exit 0,
    and the params and metrics logged before are there."""
    (tmp_path / "afile").write_text("not a directory\n")
    where = (tmp_path / "afile" / "artifacts").as_uri()
    tracking.create_experiment(request.node.name, artifact_location=where)
    code, _, err = run_cli(capsys, "train", IRIS, "-o", "r", "-q", "--set", "training.epochs=3")
    assert code == 0
    assert err.startswith("warning: mlflow: cannot log config.yaml: ") and err.count("\n") == 1
    (mlrun,) = runs_of(tracking, request.node.name)
    assert mlrun.data.params["optimizer.lr"] == "0.01"
    history = tracking.get_metric_history(mlrun.info.run_id, "train_loss")
    assert (
        sorted((m.step, m.value) for m in history)
        == csv_columns(Path("r/metrics.csv"))["train_loss"]
    )
    assert sorted(p.name for p in Path("r").iterdir() if p.name[0] != ".") == [
        "checkpoint.npz",
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "weights.npz",
    ]


def test_without_the_extra_mlflow_is_one_error_line_before_training(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, _, err = run_cli(capsys, "train", IRIS, "-o", "r", "--mlflow")
    assert code == 2
    assert err == "error: --mlflow needs the mlflow package: pip install 'backprop-cli[mlflow]'\n"
    assert not Path("r").exists()  # refused before training, not after it
    Path("grid.yaml").write_text(f"base: {IRIS}\ngrid: {{optimizer.lr: [0.1]}}\n")
    code, _, err = run_cli(capsys, "sweep", "grid.yaml", "-o", "sw", "--mlflow")
    assert code == 2 and err.count("\n") == 1 and "backprop-cli[mlflow]" in err
    assert not Path("sw").exists()


def test_without_the_extra_the_variable_is_one_warning(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///nowhere.db")
    code, _, err = run_cli(capsys, "train", IRIS, "-o", "r", "-q", "--set", "training.epochs=2")
    assert code == 0 and (Path("r") / "summary.json").is_file()
    assert err.count("\n") == 1 and err.startswith("warning: MLFLOW_TRACKING_URI is set, but")
    assert "backprop-cli[mlflow]" in err and "--no-mlflow" in err
    code, _, err = run_cli(capsys, "train", IRIS, "-o", "s", "-q", "--no-mlflow")
    assert code == 0 and err == ""


def test_an_untracked_run_never_imports_mlflow(tmp_path):
    code = (
        "import sys; from backprop_cli.cli import main; "
        f"c = main(['train', {str(IRIS)!r}, '-o', 'r', '-q', '--set', 'training.epochs=2']); "
        "assert c == 0 and 'mlflow' not in sys.modules, sorted(sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)


def test_params_flatten_the_config_as_mlflow_takes_keys():
    from backprop_cli.training.tracking import flat_params

    config = {
        "optimizer": {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999], "amsgrad": False},
        "model": {"layers": [{"units": 8, "init": None}]},
        "data": {"columns": {"price ($)": {"scale": True}}, "features": [], "path": "x" * 700},
        "training": {"class_weight": {0: 1.0, "rare/one": 5.0}},
    }
    assert flat_params(config, limit=500) == {
        "optimizer.name": "adam",
        "optimizer.lr": "0.001",
        "optimizer.betas.0": "0.9",
        "optimizer.betas.1": "0.999",
        "optimizer.amsgrad": "false",
        "model.layers.0.units": "8",
        "model.layers.0.init": "null",
        "data.columns.price ___.scale": "true",
        "data.features": "[]",
        "data.path": "x" * 497 + "...",
        "training.class_weight.0": "1.0",
        "training.class_weight.rare_one": "5.0",
    }


def test_nan_cells_are_left_out_of_the_metrics():
    from backprop_cli.training.tracking import metric_values

    record = {"epoch": 3, "train_loss": 0.5, "val_loss": math.nan, "lr": 0.1, "warnings": ["x"]}
    assert metric_values(record) == {"train_loss": 0.5, "lr": 0.1}


# ---------------------------------------------------------------------------- DVC

DVC_EXAMPLE = ROOT / "examples" / "dvc" / "dvc.yaml"


def dvc_stage() -> tuple[dict, list[str], str]:
    """The example's stage, its backprop command (split) and the run directory it trains into."""
    stage = yaml.safe_load(DVC_EXAMPLE.read_text())["stages"]["train"]
    clear, train = stage["cmd"]
    cmd = shlex.split(train)
    out = cmd[cmd.index("--out") + 1]
    assert shlex.split(clear) == ["rm", "-rf", out]  # a new run each time: never runs/iris-2
    return stage, cmd, out


def declared(entries: list) -> list[str]:
    """The paths of a stage's outs, metrics or plots (a path, or a path with options)."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_the_dvc_example_names_the_files_a_run_writes(capsys, tmp_path):
    """The example's stage, run as its command says (into tmp_path): it declares exactly the
    files the run writes, its deps exist, and its plot's columns are metrics.csv's. When the
    run directory changes, this fails until the example does too."""
    stage, cmd, out = dvc_stage()
    assert (DVC_EXAMPLE.parent / stage["wdir"]).resolve() == ROOT
    assert cmd[:2] == ["backprop", "train"] and cmd[2] in stage["deps"]
    assert all((ROOT / dep).exists() for dep in stage["deps"])
    args = [ROOT / a if a == cmd[2] else tmp_path / a if a == out else a for a in cmd[1:]]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    paths = declared(stage["outs"]) + declared(stage["metrics"]) + declared(stage["plots"])
    written = [f"{out}/{p.name}" for p in (tmp_path / out).iterdir() if not p.name.startswith(".")]
    assert sorted(paths) == sorted(written)
    (plot,) = stage["plots"]
    (options,) = plot.values()
    with open(tmp_path / declared(stage["plots"])[0], newline="") as f:
        header = next(csv.reader(f))
    assert options["x"] == "epoch" and options["y"] in header
    (summary,) = declared(stage["metrics"])
    assert json.loads((tmp_path / summary).read_text())["stop_reason"] == "completed"


@pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc is not installed (no dependency)")
def test_dvc_repro_runs_the_example(tmp_path):
    """The example in a repository of its own: dvc repro trains, dvc metrics show reads the
    summary, and a second repro with nothing changed trains nothing."""
    repo = tmp_path / "repo"
    stage, cmd, out = dvc_stage()
    for rel in [*stage["deps"], str(DVC_EXAMPLE.relative_to(ROOT))]:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    shim = tmp_path / "bin" / "backprop"  # `backprop` on PATH: this checkout's, this Python's
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m backprop_cli "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    env |= {"PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("dvc", "repro", str(DVC_EXAMPLE.relative_to(ROOT)))
    summary = json.loads((repo / out / "summary.json").read_text())
    shown = json.loads(run("dvc", "metrics", "show", "--json"))
    assert str(summary["test"]["accuracy"]) in json.dumps(shown)
    again = run("dvc", "repro", str(DVC_EXAMPLE.relative_to(ROOT)))
    assert "didn't change" in again and not (repo / f"{out}-2").exists()
    assert json.loads((repo / out / "summary.json").read_text()) == summary


@needs_store
def test_a_search_sweep_tracks_its_pruned_trials_as_finished(capsys, tmp_path, tracking, request):
    """An Optuna search (issue 17's two halves together): each trial a nested run; a trial the
    pruner stopped is FINISHED (stopped on purpose, not failed), tagged pruned, and holds
    exactly the epochs in its metrics.csv."""
    pytest.importorskip("optuna", reason="the search extra (optuna) is not installed")
    (tmp_path / "s.yaml").write_text(
        f"base: {IRIS}\nset: {{training.epochs: 12, training.batch_size: 16}}\n"
        "random:\n  keys:\n    optimizer.lr: {log_uniform: [1.0e-5, 1.0]}\n"
        "search: {trials: 8, pruner: median, seed: 0}\noutput: {dir: sw}\n"
    )
    code, _, err = run_cli(capsys, "sweep", "s.yaml", "--workers", "2", "--mlflow")
    assert code == 0, err
    runs = runs_of(tracking, request.node.name)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert len(children) == 8
    rows = {r["trial"]: r for r in csv.DictReader(open(tmp_path / "sw" / "sweep_summary.csv"))}
    pruned = [c for c in children if rows[c.info.run_name]["status"] == "pruned"]
    assert pruned  # the median pruner stopped some
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["backprop.stop_reason"] == rows[child.info.run_name]["status"]
        check_run_against_its_directory(tracking, child, tmp_path / "sw" / child.info.run_name)
