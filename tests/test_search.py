"""Adaptive search (a sweep file's search:) with Optuna: the space as Optuna distributions, TPE
against its own random start, the median pruner stopping trials with their files kept, the
study continued by --resume, the same search on a Dask LocalCluster, and bad search files."""

import csv
import json
import statistics
import sys

import pytest

optuna = pytest.importorskip(
    "optuna",
    reason="Optuna (the search extra: pip install 'backprop-cli[search]') is not installed",
)

from backprop_cli.sweep import load_sweep, open_sweep  # noqa: E402
from backprop_cli.sweep.search import STUDY_NAME, Space, space_of, storage  # noqa: E402

from .conftest import CONFIGS, assert_one_line_error, json_lines, run_cli  # noqa: E402

IRIS = CONFIGS / "iris.yaml"
TrialState = optuna.trial.TrialState


def search_file(tmp_path, search: str, epochs: int = 6, name: str = "s.yaml", batch_size=16):
    """A search over iris's learning rate (five decades) and hidden units."""
    text = f"""\
base: {IRIS}
set: {{training.epochs: {epochs}, training.batch_size: {batch_size}}}
random:
  keys:
    optimizer.lr: {{log_uniform: [1.0e-5, 1.0]}}
    model.layers[0].units: {{int_uniform: [2, 16]}}
search: {search}
output: {{dir: runs/s}}
"""
    (tmp_path / name).write_text(text)
    return name


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def study_of(sweep_dir):
    return optuna.load_study(study_name=STUDY_NAME, storage=storage(sweep_dir))


def test_the_space_as_optuna_distributions(tmp_path):
    d = optuna.distributions
    (tmp_path / "s.yaml").write_text(
        f"""\
base: {IRIS}
grid:
  model.layers[0].activation: [tanh, relu]
  optimizer.betas: [[0.9, 0.999], [0.8, 0.99]]
random:
  keys:
    optimizer.lr: {{uniform: [0.001, 0.1]}}
    optimizer.weight_decay: {{log_uniform: [1.0e-6, 1.0e-2]}}
    training.epochs: {{int_uniform: [2, 5]}}
    training.batch_size: {{choice: [16, 32, full]}}
search: {{trials: 3}}
"""
    )
    space = space_of(load_sweep(tmp_path / "s.yaml"))
    assert space.distributions == {
        "model.layers[0].activation": d.CategoricalDistribution(("tanh", "relu")),
        # a list is not a choice Optuna can store: it is one as the sweep file writes it
        "optimizer.betas": d.CategoricalDistribution(("[0.9, 0.999]", "[0.8, 0.99]")),
        "optimizer.lr": d.FloatDistribution(0.001, 0.1),
        "optimizer.weight_decay": d.FloatDistribution(1e-6, 1e-2, log=True),
        "training.epochs": d.IntDistribution(2, 5),
        "training.batch_size": d.CategoricalDistribution((16, 32, "full")),
    }
    params = {
        "model.layers[0].activation": "relu",
        "optimizer.betas": "[0.8, 0.99]",
        "optimizer.lr": 0.05,
        "optimizer.weight_decay": 1e-4,
        "training.epochs": 3,
        "training.batch_size": "full",
    }
    values = space.values(params)
    assert values["optimizer.betas"] == [0.8, 0.99] and values["training.batch_size"] == "full"
    assert values["optimizer.lr"] == 0.05 and values["training.epochs"] == 3
    assert list(values) == list(params)  # the sweep's key order: grid, then random
    # 1 == True: Optuna could not tell them apart, so they are '1' and 'true'
    space = Space({"a": [1, True], "b": [[1], [2]], "c": [0.5, None]})
    assert space.distributions["a"] == d.CategoricalDistribution(("1", "true"))
    assert space.values({"a": "true", "b": "[2]", "c": None}) == {"a": True, "b": [2], "c": None}
    # GridSampler's space: the categorical keys' choices, as Optuna stores them
    assert space.grid() == {"a": ["1", "true"], "b": ["[1]", "[2]"], "c": [0.5, None]}


def test_tpe_does_better_than_its_random_start(tmp_path, capsys):
    """TPE's first 10 trials are random (its startup); the 14 it then chooses from what it
    has seen are better: a better best val_loss, and a far better typical one."""
    name = search_file(tmp_path, "{sampler: tpe, trials: 24, pruner: none, seed: 3}", epochs=5)
    code, out, err = run_cli(capsys, "sweep", name, "--workers", "1", "--json")
    assert code == 0, err
    rows = read_csv(tmp_path / "runs" / "s" / "sweep_summary.csv")
    assert [r["trial"] for r in rows] == [f"trial-{i:03d}" for i in range(24)]
    assert {r["status"] for r in rows} == {"completed"}
    losses = [float(r["val_loss"]) for r in rows]
    startup, chosen = losses[:10], losses[10:]
    assert min(chosen) < min(startup)
    assert statistics.median(chosen) < statistics.median(startup) / 2
    # the study holds the same trials, with the best epoch's val_loss as each one's value
    study = study_of(tmp_path / "runs" / "s")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 24
    for t, r in zip(study.trials, rows, strict=True):
        metrics = read_csv(tmp_path / r["dir"] / "metrics.csv")
        assert t.value == min(float(m["val_loss"]) for m in metrics)
        assert t.params["optimizer.lr"] == float(r["optimizer.lr"])
    summary = json_lines(out)[-1]
    assert summary["best"]["trial"] == f"trial-{study.best_trial.number:03d}"


def test_the_median_pruner_stops_trials_and_keeps_their_files(tmp_path, capsys):
    name = search_file(tmp_path, "{trials: 12, pruner: median, seed: 0}", epochs=20)
    code, out, err = run_cli(capsys, "sweep", name, "--workers", "2")
    assert code == 0, err  # pruned trials are not failures
    sweep_dir = tmp_path / "runs" / "s"
    rows = read_csv(sweep_dir / "sweep_summary.csv")
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert pruned and {r["status"] for r in rows} <= {"completed", "pruned"}
    study = study_of(sweep_dir)
    states = {f"trial-{t.number:03d}": t for t in study.trials}
    assert {r["trial"] for r in pruned} == {
        n for n, t in states.items() if t.state == TrialState.PRUNED
    }
    for r in pruned:
        d = tmp_path / r["dir"]
        assert {"config.yaml", "metrics.csv", "summary.json", "weights.npz", "checkpoint.npz"} <= {
            p.name for p in d.iterdir()
        }
        metrics = read_csv(d / "metrics.csv")
        assert 1 <= len(metrics) < 20 and int(r["epochs"]) == len(metrics)
        summary = json.loads((d / "summary.json").read_text())
        assert summary["stop_reason"] == "pruned" and summary["epochs"] == len(metrics)
        # every epoch's val_loss was reported to the study, and nothing after the last
        t = states[r["trial"]]
        assert t.intermediate_values == {int(m["epoch"]): float(m["val_loss"]) for m in metrics}
    # the weights of a pruned trial are its last epoch's, and usable
    code, _, err = run_cli(capsys, "eval", "--weights", tmp_path / pruned[0]["dir"] / "weights.npz")
    assert code == 0, err
    assert f"{len(pruned)} pruned" in out.splitlines()[-3]


def test_resume_with_more_trials_continues_the_same_study(tmp_path, capsys):
    name = search_file(tmp_path, "{trials: 4, pruner: none}", epochs=3)
    code, out, err = run_cli(capsys, "sweep", name, "--workers", "2")
    assert code == 0, err
    sweep_dir = tmp_path / "runs" / "s"
    first = {
        p: p.stat().st_mtime_ns for t in range(4) for p in (sweep_dir / f"trial-{t:03d}").iterdir()
    }
    before = read_csv(sweep_dir / "sweep_summary.csv")
    search_file(tmp_path, "{trials: 7, pruner: none}", epochs=3)
    code, out, err = run_cli(capsys, "sweep", name, "--resume", "--workers", "2", "--json")
    assert code == 0, err
    events = json_lines(out)
    assert (events[0]["trials"], events[0]["to_run"], events[0]["skipped"]) == (7, 3, 4)
    ran = sorted(e["trial"] for e in events if e["event"] == "trial")
    assert ran == ["trial-004", "trial-005", "trial-006"]
    study = study_of(sweep_dir)
    assert [t.number for t in study.trials] == list(range(7))
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert sorted(p.name for p in sweep_dir.glob("trial-*")) == [f"trial-{i:03d}" for i in range(7)]
    assert {p: p.stat().st_mtime_ns for p in first} == first  # the first four untouched
    after = read_csv(sweep_dir / "sweep_summary.csv")
    assert after[:4] == before
    lrs = [t.params["optimizer.lr"] for t in study.trials]
    assert len(set(lrs)) == 7  # new values, not the first invocation's draws again
    assert "trials: 7" in (sweep_dir / "sweep.yaml").read_text()
    # a trial the study has running without a directory (asked, then the sweep was killed)
    # is run with the values it was given
    study.ask(space_of(load_sweep(tmp_path / name)).distributions)
    code, out, err = run_cli(capsys, "sweep", sweep_dir, "--resume", "--workers", "1", "--json")
    assert code == 0, err
    assert [e["trial"] for e in json_lines(out) if e["event"] == "trial"] == ["trial-007"]
    study = study_of(sweep_dir)
    assert len(study.trials) == 8 and study.trials[7].state == TrialState.COMPLETE
    code, out, err = run_cli(capsys, "sweep", sweep_dir, "--resume")
    assert code == 0 and "nothing to resume" in err + out


def test_an_interrupted_search_continues_its_running_trial(tmp_path, monkeypatch):
    """Stopped (by the .stop file, as Ctrl-C makes it) while its first trial trains: the trial
    keeps its epochs and stays running in the study, the second is never asked; the resume
    continues the first from its checkpoint with the same values, then asks the second."""
    # one row a batch on the NumPy path: epochs of milliseconds, so that the stop comes in the
    # middle (the fused step trains the 400 epochs before the first progress report)
    monkeypatch.setenv("BACKPROP_FUSED", "0")
    name = search_file(tmp_path, "{trials: 2, pruner: none}", epochs=400, batch_size=1)
    with open_sweep(name, workers=1) as runner:
        sweep_dir = runner.dir
        for event in runner.run(watch=True):
            if event["event"] == "progress" and not (sweep_dir / ".stop").exists():
                if any(s["state"] == "running" and s["epoch"] > 0 for s in event["states"]):
                    (sweep_dir / ".stop").write_text("stop\n")
        summary = event
    assert summary["stopped"] and (summary["interrupted"], summary["pending"]) == (1, 1)
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    params = study.trials[0].params
    kept = read_csv(sweep_dir / "trial-000" / "metrics.csv")
    assert 0 < len(kept) < 400

    with open_sweep(sweep_dir, resume=True, workers=1) as runner:
        assert runner.remaining == 2
        events = list(runner.run())
    assert events[-1]["succeeded"] == 2 and not events[-1]["stopped"]
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.trials[0].params == params
    now = read_csv(sweep_dir / "trial-000" / "metrics.csv")
    assert [int(r["epoch"]) for r in now] == list(range(1, 401))
    assert now[: len(kept)] == kept  # continued, not trained again
    assert sorted(study.trials[0].intermediate_values) == list(range(1, 401))


def test_the_same_search_on_a_dask_local_cluster(tmp_path, capsys):
    pytest.importorskip("distributed", reason="dask.distributed (the sweep extra) is not installed")
    name = search_file(tmp_path, "{trials: 8, pruner: median, seed: 1}", epochs=10)
    code, out, err = run_cli(capsys, "sweep", name, "--dask-local", "2", "--json")
    assert code == 0, err
    events = json_lines(out)
    assert "LocalCluster of 2 worker(s)" in events[0]["backend"]
    assert events[0]["search"]["sampler"] == "tpe" and events[0]["search"]["pruner"] == "median"
    sweep_dir = tmp_path / "runs" / "s"
    rows = read_csv(sweep_dir / "sweep_summary.csv")
    study = study_of(sweep_dir)
    assert len(rows) == len(study.trials) == 8
    expected = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned"}
    assert [r["status"] for r in rows] == [expected[t.state] for t in study.trials]
    for t, r in zip(study.trials, rows, strict=True):
        metrics = read_csv(tmp_path / r["dir"] / "metrics.csv")
        assert len(t.intermediate_values) == len(metrics)  # the Dask workers reported
    summary = events[-1]
    assert summary["succeeded"] + summary["pruned"] == 8


def test_sampler_grid_tries_each_point_once(tmp_path, capsys):
    (tmp_path / "g.yaml").write_text(
        f"""\
base: {IRIS}
set: {{training.epochs: 2}}
grid:
  optimizer.lr: [0.1, 0.01]
  model.layers[0].units: [4, 8]
search: {{sampler: grid, pruner: none}}
"""
    )
    code, out, err = run_cli(capsys, "sweep", "g.yaml", "--workers", "2", "--json")
    assert code == 0, err  # Optuna's RuntimeError after the last grid point is not an error
    rows = read_csv(tmp_path / "runs" / "sweeps" / "g" / "sweep_summary.csv")
    assert len(rows) == 4  # trials: the grid's size
    points = {(r["optimizer.lr"], r["model.layers[0].units"]) for r in rows}
    assert points == {("0.1", "4"), ("0.1", "8"), ("0.01", "4"), ("0.01", "8")}


@pytest.mark.parametrize(
    ("search", "words"),
    [
        ("{sampler: tpee, trials: 3}", ["search.sampler", "'tpee'", "did you mean 'tpe'"]),
        ("{trails: 3}", ["search.trails: unknown key", "'trials'"]),
        ("{trials: 0}", ["search.trials: expected an integer from 1 to 10000 (got 0)"]),
        ("{trials: 3.5}", ["search.trials: expected an integer"]),
        ("{}", ["search.trials: required key is missing"]),
        ("{trials: 3, direction: up}", ["search.direction: expected minimize or maximize"]),
        (
            "{trials: 3, direction: maximize}",
            ["search.direction: maximize contradicts", "val_loss"],
        ),
        ("{trials: 3, metric: test_loss}", ["search.metric", "every epoch", "(got 'test_loss')"]),
        ("{trials: 3, metric: val_r2}", ["metric: val_r2 needs a regression loss"]),
        ("{trials: 3, pruner: mediam}", ["search.pruner", "did you mean 'median'"]),
        ("{trials: 3, seed: -1}", ["search.seed: expected an integer >= 0 (got -1)"]),
        ("[tpe]", ["search: expected a mapping with sampler, trials"]),
        ("{sampler: grid}", ["random.keys: sampler grid tries the grid's values only"]),
    ],
)
def test_bad_search_values_exit_2_in_one_line(tmp_path, capsys, search, words):
    name = search_file(tmp_path, search)
    code, out, err = run_cli(capsys, "sweep", name, "--workers", "1")
    assert code == 2
    assert_one_line_error(err, "s.yaml: ", *words)
    assert out == "" and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "random: {samples: 4, keys: {optimizer.lr: {uniform: [0.01, 0.1]}}}\nsearch: {trials: 3}",
            ["random.samples: with search, the trials are search.trials"],
        ),
        (
            "random: {seed: 4, keys: {optimizer.lr: {uniform: [0.01, 0.1]}}}\nsearch: {trials: 3}",
            ["random.seed: with search, the sampler's seed is search.seed"],
        ),
        (
            "grid: {optimizer.lr: [0.1, 0.01]}\nsearch: {sampler: grid, trials: 3}",
            ["search.trials: 3 is more than the grid's 2 combination(s)"],
        ),
        (
            "grid: {optimizer.lr: [0.1]}\nsearch: {trials: 3, metric: val_accuracy}\nmetric: val_loss",
            ["search.metric: val_accuracy differs from metric: val_loss"],
        ),
        (
            # a value the space can give that no config takes: found before anything runs
            "random: {keys: {'model.layers[0].units': {int_uniform: [0, 8]}}}\nsearch: {trials: 3}",
            ["search (model.layers[0].units=0)", "model.layers[0].units"],
        ),
        (
            "random: {keys: {training.epochs: {uniform: [2, 5]}}}\nsearch: {trials: 3}",
            ["search (training.epochs=2.0)", "training.epochs"],
        ),
    ],
)
def test_bad_combinations_exit_2_in_one_line(tmp_path, capsys, text, words):
    (tmp_path / "s.yaml").write_text(f"base: {IRIS}\n{text}\n")
    code, out, err = run_cli(capsys, "sweep", "s.yaml")
    assert code == 2
    assert_one_line_error(err, "s.yaml: ", *words)
    assert not (tmp_path / "runs").exists()


def test_a_changed_search_is_not_resumed(tmp_path, capsys):
    name = search_file(tmp_path, "{trials: 2, pruner: none}", epochs=2)
    code, _, err = run_cli(capsys, "sweep", name, "--workers", "1")
    assert code == 0, err
    search_file(tmp_path, "{trials: 2, pruner: median}", epochs=2)
    code, _, err = run_cli(capsys, "sweep", name, "--resume")
    assert code == 2
    assert_one_line_error(err, "search.pruner: differs from the sweep in runs/s")


def test_without_optuna_a_search_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    name = search_file(tmp_path, "{trials: 3}")
    code, out, err = run_cli(capsys, "sweep", name)
    assert code == 2
    assert_one_line_error(
        err, "s.yaml: search needs the optuna package: pip install 'backprop-cli[search]'"
    )
    assert not (tmp_path / "runs").exists()


def test_the_example_search_file():
    sweep = load_sweep(CONFIGS / "sweeps" / "iris-tpe.yaml")
    assert sweep.search == {
        "sampler": "tpe",
        "trials": 30,
        "direction": "minimize",
        "metric": "val_loss",
        "pruner": "median",
        "seed": 0,
    }
    assert sweep.out == "runs/sweeps/iris-tpe" and sweep.trials == []
    assert list(space_of(sweep).distributions) == sweep.keys
