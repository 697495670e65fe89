"""Sweeps: a grid and random draws over a base config, each trial an ordinary run, on the
local process pool and on a Dask LocalCluster; bad sweep files; failures; Ctrl-C and resume."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from backprop_cli.errors import ConfigError, OutputError
from backprop_cli.sweep import load_sweep, open_sweep, show_value, sweep_lock

from .conftest import CONFIGS, assert_one_line_error, json_lines, run_cli

IRIS = CONFIGS / "iris.yaml"

# Four tiny iris trials: 2 epochs each.
GRID = f"""\
base: {IRIS}
set: {{training.epochs: 2}}
grid:
  optimizer.lr: [0.1, 0.01]
  model.layers[0].units: [4, 8]
output: {{dir: runs/grid}}
"""

# A regression whose first learning rate diverges at the first epoch (exit 3 inside the trial).
REGRESSION = """\
name: reg
seed: 0
data: {dataset: friedman, n_samples: 200, validation: 0.2, test: 0.2}
model:
  layers:
    - {units: 8, activation: relu}
    - {units: 1, activation: identity}
loss: mse
optimizer: {name: sgd, lr: 0.01}
training: {epochs: 2, batch_size: 32}
"""
DIVERGING = """\
base: reg.yaml
grid:
  optimizer.lr: [1.0e+6, 0.01, 0.001]
output: {dir: runs/reg}
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_grid_run(events, tmp_path):
    """The four trials of GRID ran, each an ordinary run with its own values, and the summary
    names the best by val_loss."""
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary"
    assert sorted(e["trial"] for e in events if e["event"] == "trial") == [
        f"trial-00{i}" for i in range(4)
    ]
    sweep_dir = tmp_path / "runs" / "grid"
    rows = read_csv(sweep_dir / "sweep_summary.csv")
    assert list(rows[0]) == [
        "trial",
        "optimizer.lr",
        "model.layers[0].units",
        "status",
        "epochs",
        "best_epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
        "time_s",
        "dir",
        "error",
    ]
    assert [(r["trial"], r["optimizer.lr"], r["model.layers[0].units"]) for r in rows] == [
        ("trial-000", "0.1", "4"),
        ("trial-001", "0.1", "8"),
        ("trial-002", "0.01", "4"),
        ("trial-003", "0.01", "8"),
    ]
    assert {r["status"] for r in rows} == {"completed"} and {r["epochs"] for r in rows} == {"2"}
    for r in rows:
        d = sweep_dir / r["trial"]
        assert sorted(p.name for p in d.iterdir()) == sorted(
            [".lock", "config.yaml", "weights.npz", "checkpoint.npz", "metrics.csv", "summary.json"]
        )
        config = (d / "config.yaml").read_text()
        assert (
            f"lr: {r['optimizer.lr']}" in config
            and f"units: {r['model.layers[0].units']}" in config
        )
        assert json.loads((d / "summary.json").read_text())["stop_reason"] == "completed"
    summary = events[-1]
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert summary["best"]["trial"] == best["trial"]
    assert summary["metric"] == "val_loss" and summary["mode"] == "min"
    assert (summary["trials"], summary["ran"], summary["succeeded"], summary["failed"]) == (
        4,
        4,
        4,
        0,
    )
    assert (sweep_dir / "sweep.yaml").is_file()
    return rows


def test_grid_on_the_local_pool(tmp_path, capsys):
    (tmp_path / "grid.yaml").write_text(GRID)
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--workers", "2", "--json")
    assert code == 0, err
    events = json_lines(out)  # every line is JSON
    assert events[0]["backend"].startswith("a local pool of 2 worker(s)")
    check_grid_run(events, tmp_path)


def test_the_same_sweep_on_a_dask_local_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    (tmp_path / "grid.yaml").write_text(GRID)
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--dask-local", "2", "--json")
    assert code == 0, err
    events = json_lines(out)
    assert "LocalCluster of 2 worker(s) on 127.0.0.1" in events[0]["backend"]
    rows = check_grid_run(events, tmp_path)
    # The same numbers as the local pool gives: each trial is the same ordinary run.
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--workers", "2", "--out", "local")
    assert code == 0, err
    local = read_csv(tmp_path / "local" / "sweep_summary.csv")
    assert [r["val_loss"] for r in local] == [r["val_loss"] for r in rows]


def test_random_draws_are_reproducible_and_within_bounds(tmp_path):
    spec = f"""\
base: {IRIS}
grid:
  model.layers[0].units: [4, 8]
random:
  samples: 25
  seed: 7
  keys:
    optimizer.weight_decay: {{log_uniform: [1.0e-5, 1.0e-2]}}
    optimizer.lr: {{uniform: [0.001, 0.1]}}
    training.epochs: {{int_uniform: [2, 5]}}
    training.batch_size: {{choice: [16, 32, full]}}
"""
    (tmp_path / "r.yaml").write_text(spec)
    sweep = load_sweep(tmp_path / "r.yaml")
    assert len(sweep.trials) == 2 * 25  # every grid point with every draw
    assert sweep.keys == [
        "model.layers[0].units",
        "optimizer.weight_decay",
        "optimizer.lr",
        "training.epochs",
        "training.batch_size",
    ]
    for t in sweep.trials:
        v, c = t.values, t.config
        assert 1e-5 <= v["optimizer.weight_decay"] <= 1e-2
        assert 0.001 <= v["optimizer.lr"] <= 0.1
        assert v["training.epochs"] in (2, 3, 4, 5)
        assert v["training.batch_size"] in (16, 32, "full")
        # the values reached the trial's resolved config, exactly
        assert c["optimizer"]["weight_decay"] == v["optimizer.weight_decay"]
        assert c["optimizer"]["lr"] == v["optimizer.lr"]
        assert c["training"]["epochs"] == v["training.epochs"]
        assert c["model"]["layers"][0]["units"] == v["model.layers[0].units"]
    draws = [t.values for t in sweep.trials]
    # log-uniform: spread over the decades, not bunched at the top
    decades = {math.floor(math.log10(d["optimizer.weight_decay"])) for d in draws}
    assert len(decades) >= 3
    assert len({d["training.batch_size"] for d in draws}) == 3
    # the same seed, the same draws; another seed, others
    assert [t.values for t in load_sweep(tmp_path / "r.yaml").trials] == draws
    (tmp_path / "r2.yaml").write_text(spec.replace("seed: 7", "seed: 8"))
    assert [t.values for t in load_sweep(tmp_path / "r2.yaml").trials] != draws


@pytest.mark.parametrize(
    "value", [0.1, 1e-05, 3.0000000000000004e-07, 64, "adam", "yes", True, [0.9, 0.99], None]
)
def test_values_round_trip_through_set(value):
    from backprop_cli.config import parse_yaml

    assert parse_yaml(show_value(value), "v") == value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"base: {IRIS}\ngrdi: {{optimizer.lr: [0.1]}}\n", ["grdi: unknown key", "'grid'"]),
        (
            f"base: {IRIS}\ngrid: {{optimizer.lrr: [0.1, 0.2]}}\n",
            ["trial-000", "optimizer.lrr: unknown key", "'lr'"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{optimizer.lr: {{loguniform: [1.0e-4, 0.1]}}}}}}\n",
            ["random.keys.optimizer.lr", "unknown distribution 'loguniform'", "'log_uniform'"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{optimizer.lr: {{log_uniform: [0, 0.1]}}}}}}\n",
            ["log_uniform: LOW must be > 0"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{optimizer.lr: {{uniform: [0.1]}}}}}}\n",
            ["uniform: expected [LOW, HIGH]"],
        ),
        (
            f"base: {IRIS}\ngrid: {{optimizer.lr: [0.1, -0.1]}}\n",
            ["trial-001 (optimizer.lr=-0.1)", "optimizer.lr: must be > 0"],
        ),
        (
            f"base: {IRIS}\ngrid:\n  model.layers[1].units: [3, 4]\n",
            ["trial-001", "model.layers[1].units", "the data has 3 classes"],
        ),
        (
            f"base: {IRIS}\ngrid: {{optimizer.lr: []}}\n",
            ["grid: optimizer.lr: expected a non-empty list"],
        ),
        (f"base: {IRIS}\nset: {{training.epochs: 2}}\n", ["nothing to vary"]),
        (
            f"base: {IRIS}\ngrid: {{optimizer.lr: [0.1]}}\nmetric: val_r2\n",
            ["metric: val_r2", "val_accuracy"],
        ),
        (f"base: {IRIS}\ngrid: {{output.dir: [a, b]}}\n", ["output.dir", "own directory"]),
        ("base: nowhere.yaml\ngrid: {optimizer.lr: [0.1]}\n", ["base: ", "not found"]),
        ("grid: {optimizer.lr: [0.1]}\n", ["base: required key is missing"]),
        ("", ["a sweep file is a mapping"]),
        (
            f"base: {IRIS}\nrandom: {{sampels: 2, keys: {{optimizer.lr: {{uniform: [0.1, 0.2]}}}}}}\n",
            ["random.sampels: unknown key", "'samples'"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{optimizer.lr: 3}}}}\n",
            ["random.keys.optimizer.lr: expected one distribution"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{optimizer.lr: {{uniform: [a, 1]}}}}}}\n",
            ["optimizer.lr.uniform: expected numbers [LOW, HIGH] with LOW < HIGH (got [a, 1])"],
        ),
        (
            f"base: {IRIS}\nrandom: {{samples: 2, keys: {{training.epochs: {{int_uniform: [3, 1]}}}}}}\n",
            ["training.epochs.int_uniform: expected integers [LOW, HIGH] with LOW <= HIGH"],
        ),
        (
            f"base: {IRIS}\nset: {{optimizer.lr: 0.1}}\ngrid: {{optimizer.lr: [0.1]}}\nmetric: zzz\n",
            ["grid: optimizer.lr: overlaps optimizer.lr in set"],
        ),
        (
            f"base: {IRIS}\ngrid:\n  model.layers[0].units: [4]\n  model.layers.0.units: [8]\n",
            ["model.layers.0.units: overlaps model.layers[0].units"],
        ),
        (f"base: {IRIS}\ngrid: {{'a=b': [1]}}\n", ["grid: 'a=b': expected a config key"]),
        (f"base: {IRIS}\ngrid: {{optimizer.lr: [0.1]}}\noutput: {{dri: x}}\n", ["output.dri"]),
    ],
)
def test_bad_sweep_files_exit_2_in_one_line_and_write_nothing(tmp_path, capsys, text, words):
    (tmp_path / "s.yaml").write_text(text)
    code, out, err = run_cli(capsys, "sweep", "s.yaml", "--workers", "1")
    assert code == 2
    assert_one_line_error(err, "s.yaml", *words)
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # no runs/ at all


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--quiet", "--json"], ["--quiet and --json"]),
        (["--workers", "0"], ["--workers: must be >= 1"]),
        (["--scheduler", "tcp://127.0.0.1:1", "--dask-local", "2"], ["give one or the other"]),
        (["--workers", "2", "--dask-local", "2"], ["--workers"]),
        (["--resume"], ["no sweep.yaml", "not a sweep directory"]),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, args, words):
    (tmp_path / "grid.yaml").write_text(GRID)
    code, _, err = run_cli(capsys, "sweep", "grid.yaml", *args)
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "runs").exists()


def test_a_directory_needs_resume(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    code, _, err = run_cli(capsys, "sweep", "d")
    assert code == 2
    assert_one_line_error(err, "is a directory", "--resume")


def test_a_failing_trial_does_not_stop_the_others(tmp_path, capsys):
    (tmp_path / "reg.yaml").write_text(REGRESSION)
    (tmp_path / "s.yaml").write_text(DIVERGING)
    code, out, err = run_cli(capsys, "sweep", "s.yaml", "--workers", "2")
    assert code == 1  # the sweep ran; a trial failed
    assert_one_line_error(err, "1 of 3 trial(s) failed", "trial-000", "diverged")
    rows = read_csv(tmp_path / "runs" / "reg" / "sweep_summary.csv")
    assert [r["status"] for r in rows] == ["diverged", "completed", "completed"]
    assert rows[0]["error"].startswith("training diverged at epoch 1")
    assert "val_r2" in rows[0] and rows[1]["val_r2"] != ""
    # plain output: one line per finished trial, then the best trial and the failures
    lines = out.splitlines()
    assert sum(line.startswith("trial-00") for line in lines) == 3
    assert any(line.startswith("best: trial-001 by val_loss") for line in lines)
    i = lines.index("failed:")
    assert lines[i + 1].startswith("  trial-000: diverged: training diverged at epoch 1")
    assert lines[-1] == "summary: runs/reg/sweep_summary.csv"


def test_fail_fast_starts_no_more_trials_and_resume_runs_them(tmp_path, capsys):
    (tmp_path / "reg.yaml").write_text(REGRESSION)
    (tmp_path / "s.yaml").write_text(DIVERGING)
    code, out, err = run_cli(capsys, "sweep", "s.yaml", "--workers", "1", "--fail-fast", "--json")
    assert code == 1
    assert_one_line_error(err, "--fail-fast cancelled 2 trial(s)")
    events = json_lines(out)
    assert [e["event"] for e in events] == ["start", "trial", "stopping", "summary"]
    assert events[1]["trial"] == "trial-000" and events[1]["status"] == "diverged"
    assert events[2]["reason"] == "fail_fast"
    assert events[-1]["cancelled"] == 2 and events[-1]["best"] is None
    sweep_dir = tmp_path / "runs" / "reg"
    assert not (sweep_dir / "trial-001").exists() and not (sweep_dir / "trial-002").exists()
    assert [r["status"] for r in read_csv(sweep_dir / "sweep_summary.csv")] == [
        "diverged",
        "cancelled",
        "cancelled",
    ]
    # --resume runs the cancelled trials; the diverged one is finished (it would diverge again)
    code, out, err = run_cli(capsys, "sweep", sweep_dir, "--resume", "--workers", "2", "--json")
    assert code == 1
    events = json_lines(out)
    assert sorted(e["trial"] for e in events if e["event"] == "trial") == ["trial-001", "trial-002"]
    summary = events[-1]
    assert (summary["ran"], summary["skipped"], summary["succeeded"]) == (2, 1, 2)
    assert summary["failures"][0]["error"].startswith("training diverged at epoch 1")
    assert summary["best"]["trial"] == "trial-001"


def test_resume_runs_only_what_was_missing(tmp_path, capsys):
    (tmp_path / "grid.yaml").write_text(GRID)
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--workers", "2", "--json")
    assert code == 0, err
    sweep_dir = tmp_path / "runs" / "grid"
    before = read_csv(sweep_dir / "sweep_summary.csv")
    # trial-001 never ran; trial-002 was interrupted (at its last epoch, so nothing is left
    # to train, but it must be continued from its checkpoint and its summary rewritten)
    for p in (sweep_dir / "trial-001").iterdir():
        p.unlink()
    (sweep_dir / "trial-001").rmdir()
    s = sweep_dir / "trial-002" / "summary.json"
    s.write_text(
        s.read_text().replace('"stop_reason": "completed"', '"stop_reason": "interrupted"')
    )
    untouched = {
        p: p.stat().st_mtime_ns
        for t in ("trial-000", "trial-003")
        for p in (sweep_dir / t).iterdir()
    }
    code, out, err = run_cli(capsys, "sweep", "grid.yaml", "--resume", "--workers", "2", "--json")
    assert code == 0, err
    events = json_lines(out)
    assert events[0]["to_run"] == 2 and events[0]["skipped"] == 2
    assert sorted(e["trial"] for e in events if e["event"] == "trial") == ["trial-001", "trial-002"]
    assert (events[-1]["ran"], events[-1]["skipped"], events[-1]["succeeded"]) == (2, 2, 4)
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert json.loads(s.read_text())["stop_reason"] == "completed"
    after = read_csv(sweep_dir / "sweep_summary.csv")
    assert [(r["trial"], r["status"], r["val_loss"]) for r in after] == [
        (r["trial"], r["status"], r["val_loss"]) for r in before
    ]
    # a changed sweep file is refused rather than resumed into the old directory
    (tmp_path / "grid.yaml").write_text(GRID.replace("[0.1, 0.01]", "[0.1, 0.02]"))
    code, _, err = run_cli(capsys, "sweep", "grid.yaml", "--resume")
    assert code == 2
    assert_one_line_error(err, "grid: differs from the sweep in runs/grid")


def test_ctrl_c_keeps_the_work_and_resume_continues_from_checkpoints(tmp_path):
    """A real SIGINT to a running sweep: the running trials save their completed epochs,
    exit 130 with the resume command; --resume continues them, not from scratch."""
    (tmp_path / "s.yaml").write_text(
        f"""\
base: {IRIS}
set: {{training.epochs: 3000}}
grid:
  model.layers[0].units: [4, 8]
output: {{dir: runs/long}}
"""
    )
    sweep_dir = tmp_path / "runs" / "long"
    # The NumPy path: its 3000 epochs take long enough for the SIGINT to land mid-trial (the
    # fused step can finish them before both trials have written a checkpoint).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "BACKPROP_FUSED": "0"}
    cmd = [sys.executable, "-m", "backprop_cli", "sweep", "s.yaml", "--workers", "2", "--json"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while (
            proc.poll() is None
            and time.monotonic() < deadline
            and not all(
                (sweep_dir / t / "checkpoint.npz").exists() for t in ("trial-000", "trial-001")
            )
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert_one_line_error(
        err,
        "interrupted",
        f"resume with: backprop sweep {sweep_dir.relative_to(tmp_path)} --resume --workers 2",
    )
    events = json_lines(out)
    assert [e["event"] for e in events][:2] == ["start", "stopping"]
    stopped = {e["trial"]: e for e in events if e["event"] == "trial"}
    assert {e["status"] for e in stopped.values()} == {"interrupted"}
    assert events[-1]["stopped"] is True
    first = {}
    for t in ("trial-000", "trial-001"):
        rows = read_csv(sweep_dir / t / "metrics.csv")
        assert 0 < len(rows) < 3000
        assert (
            json.loads((sweep_dir / t / "summary.json").read_text())["stop_reason"] == "interrupted"
        )
        first[t] = rows
    assert not (sweep_dir / ".stop").exists()

    proc = subprocess.run(
        [sys.executable, "-m", "backprop_cli", "sweep", str(sweep_dir), "--resume", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[-1]["succeeded"] == 2
    for t, rows in first.items():
        now = read_csv(sweep_dir / t / "metrics.csv")
        assert [int(r["epoch"]) for r in now] == list(range(1, 3001))
        # the epochs trained before the interrupt are kept as they were (their times too):
        # continued from the checkpoint, not trained again
        assert now[: len(rows)] == rows


def test_one_sweep_at_a_time_in_a_directory(tmp_path):
    with sweep_lock(tmp_path):
        with pytest.raises(OutputError, match="another backprop sweep is running"):
            with sweep_lock(tmp_path):
                pass
    with sweep_lock(tmp_path):  # released
        pass


def test_open_sweep_decides_everything_before_the_first_trial(tmp_path):
    """The library, without a terminal: a new sweep gets its directory, its lock and its
    sweep.yaml; a finished one resumes to nothing (and opens no backend); a changed sweep
    file is refused before anything is touched."""
    (tmp_path / "grid.yaml").write_text(GRID)
    with open_sweep("grid.yaml", workers=1) as runner:
        assert str(runner.dir) == os.path.join("runs", "grid")
        assert (runner.dir / "sweep.yaml").is_file() and len(runner.to_run) == 4
        assert runner.backend.describe().startswith("a local pool of 1 worker(s)")
        with pytest.raises(OutputError, match="another backprop sweep is running"):
            with sweep_lock(runner.dir):
                pass
        events = list(runner.run())
    assert events[-1]["succeeded"] == 4
    with sweep_lock(runner.dir):  # released
        pass
    with open_sweep(runner.dir, resume=True) as again:
        assert again.to_run == [] and again.backend is None
        assert again.summary()["skipped"] == 4
    (tmp_path / "grid.yaml").write_text(GRID.replace("[4, 8]", "[4, 16]"))
    with pytest.raises(ConfigError, match="grid: differs from the sweep in runs/grid"):
        with open_sweep("grid.yaml", resume=True):
            pass


def test_the_trials_are_checked_against_the_data_before_anything_runs(tmp_path):
    (tmp_path / "s.yaml").write_text(f"base: {IRIS}\ngrid:\n  model.layers[1].units: [3, 5]\n")
    with pytest.raises(ConfigError, match=r"trial-001 \(model.layers\[1\].units=5\)"):
        load_sweep(tmp_path / "s.yaml")


def test_the_example_sweep_file(tmp_path):
    sweep = load_sweep(CONFIGS / "sweeps" / "iris.yaml")
    assert len(sweep.trials) == 3 * 2 * 2 and sweep.metric == "val_loss"
    assert sweep.out == "runs/sweeps/iris"
    assert {t.config["training"]["epochs"] for t in sweep.trials} == {30}
    assert {t.values["training.batch_size"] for t in sweep.trials} == {16, 32}
