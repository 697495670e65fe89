"""The CLI through its real entry point (main, as the console script calls it): every
command, every exit code, --json output, the run files and their columns."""

import csv
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from backprop_cli.cli import main
from backprop_cli.nn import fast

from .conftest import CONFIGS, assert_one_line_error, json_lines, run_cli

FAST = ["--set", "training.epochs=3"]


@pytest.fixture
def digits_run(capsys):
    code, out, err = run_cli(capsys, "train", CONFIGS / "digits.yaml", "--json", *FAST)
    assert code == 0, err
    return json_lines(out)


def test_train_json_lines_and_run_files(digits_run, tmp_path):
    events = [e["event"] for e in digits_run]
    assert events == ["epoch"] * 3 + ["summary"]
    summary = digits_run[-1]
    run = tmp_path / "runs" / "digits"
    assert summary["run_dir"] == "runs/digits"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [".lock", "config.yaml", "weights.npz", "checkpoint.npz", "metrics.csv", "summary.json"]
    )
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "time_s",
        "grad_norm_0",
        "grad_norm_1",
        "weight_norm_0",
        "weight_norm_1",
        "update_ratio_0",
        "update_ratio_1",
    ]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) == pytest.approx(digits_run[2]["train_loss"])
    saved = json.loads((run / "summary.json").read_text())
    assert saved["stop_reason"] == "completed" and saved["epochs"] == 3
    assert saved["config_sha256"] and saved["versions"]["numpy"] == np.__version__
    assert saved["optimizer_update"] == ("compiled" if fast.library() else "numpy")
    with np.load(run / "weights.npz", allow_pickle=False) as z:
        assert set(z.files) == {"W0", "b0", "W1", "b1", "x_mean", "x_scale", "spec"}
        spec = json.loads(str(z["spec"]))
        assert z["W0"].shape == (64, 64) and z["W1"].shape == (64, 10)
    assert spec["sizes"] == [64, 64, 10] and spec["classes"] == list(range(10))
    assert spec["format"] == "backprop-weights" and spec["version"] == 2


def test_second_run_never_overwrites_the_first(digits_run, capsys, tmp_path):
    first = tmp_path / "runs" / "digits"
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    code, out, _ = run_cli(
        capsys, "train", CONFIGS / "digits.yaml", "--json", "--set", "training.epochs=1"
    )
    assert code == 0
    assert json_lines(out)[-1]["run_dir"] == "runs/digits-2"
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_plain_output_is_one_line_per_epoch(capsys):
    code, out, _ = run_cli(capsys, "train", CONFIGS / "iris.yaml", *FAST)
    assert code == 0
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]
    assert "\r" not in out and "\x1b" not in out  # no redraws or colour codes in a log
    assert "test (30 rows)" in out


def test_quiet_prints_nothing(capsys):
    code, out, err = run_cli(capsys, "train", CONFIGS / "iris.yaml", "--quiet", *FAST)
    assert code == 0 and out == "" and err == ""


def test_eval_rebuilds_the_test_split(digits_run, capsys):
    code, out, _ = run_cli(capsys, "eval", "--weights", "runs/digits/weights.npz", "--json")
    assert code == 0
    result = json.loads(out)
    test = digits_run[-1]["test"]
    assert result["rows"] == test["rows"] == 269
    assert result["accuracy"] == pytest.approx(test["accuracy"])
    assert result["loss"] == pytest.approx(test["loss"], rel=1e-6)
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == 269 and np.trace(cm) / 269 == pytest.approx(result["accuracy"])


def test_eval_val_split_matches_the_last_epoch(digits_run, capsys):
    code, out, _ = run_cli(
        capsys, "eval", "-w", "runs/digits/weights.npz", "--split", "val", "--json"
    )
    assert code == 0
    assert json.loads(out)["accuracy"] == pytest.approx(digits_run[2]["val_accuracy"])


def test_eval_thresholds_exit_1(digits_run, capsys):
    code, out, err = run_cli(
        capsys, "eval", "-w", "runs/digits/weights.npz", "--min-accuracy", "1.01"
    )
    assert code == 1
    assert_one_line_error(err, "--min-accuracy")
    code, _, err = run_cli(
        capsys, "eval", "-w", "runs/digits/weights.npz", "--max-loss", "0", "--json"
    )
    assert code == 1
    code, _, _ = run_cli(
        capsys,
        "eval",
        "-w",
        "runs/digits/weights.npz",
        "--min-accuracy",
        "0.1",
        "--max-loss",
        "100",
    )
    assert code == 0


def test_eval_human_output_has_confusion_matrix(digits_run, capsys):
    code, out, _ = run_cli(capsys, "eval", "-w", "runs/digits/weights.npz")
    assert code == 0
    assert "accuracy" in out and "confusion matrix" in out


def test_eval_on_a_file_and_predict_with_string_labels(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", CONFIGS / "iris.yaml", "--json", *FAST)
    assert code == 0, err
    iris = (CONFIGS.parent / "datasets" / "iris.csv").read_text().splitlines()
    (tmp_path / "some.csv").write_text("\n".join(iris[:1] + iris[1:151:10]) + "\n")
    code, out, _ = run_cli(
        capsys, "eval", "-w", "runs/iris/weights.npz", "--data", "some.csv", "--json"
    )
    assert code == 0 and json.loads(out)["rows"] == 15
    code, out, _ = run_cli(
        capsys, "predict", "-w", "runs/iris/weights.npz", "--data", "some.csv", "--proba"
    )
    assert code == 0
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 15
    assert set(rows[0]) == {"prediction", "p_setosa", "p_versicolor", "p_virginica"}
    assert {r["prediction"] for r in rows} <= {"setosa", "versicolor", "virginica"}
    for r in rows:
        assert sum(
            float(r[f"p_{c}"]) for c in ("setosa", "versicolor", "virginica")
        ) == pytest.approx(1, abs=1e-6)


def test_predict_output_file_is_not_overwritten(digits_run, capsys, tmp_path):
    header = ",".join(f"pixel_{i}_{j}" for i in range(8) for j in range(8))
    (tmp_path / "new.csv").write_text(header + "\n" + ",".join(["0"] * 64) + "\n")
    code, _, err = run_cli(
        capsys, "predict", "-w", "runs/digits/weights.npz", "--data", "new.csv", "-o", "p.csv"
    )
    assert code == 0
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "prediction"
    (tmp_path / "p.csv").write_text("keep me")
    code, _, err = run_cli(
        capsys, "predict", "-w", "runs/digits/weights.npz", "--data", "new.csv", "-o", "p.csv"
    )
    assert code == 2
    assert_one_line_error(err, "p.csv", "--overwrite")
    assert (tmp_path / "p.csv").read_text() == "keep me"


def test_predict_refuses_a_wrong_feature_count(digits_run, capsys, tmp_path):
    (tmp_path / "few.csv").write_text("1,2\n3,4\n")  # no header: by position, 2 of 64
    code, _, err = run_cli(capsys, "predict", "-w", "runs/digits/weights.npz", "--data", "few.csv")
    assert code == 2
    assert_one_line_error(err, "few.csv", "2 feature", "64")
    (tmp_path / "few.csv").write_text("a,b\n1,2\n")  # a header: by name
    code, _, err = run_cli(capsys, "predict", "-w", "runs/digits/weights.npz", "--data", "few.csv")
    assert code == 2
    assert_one_line_error(err, "few.csv", "no column 'pixel_0_0'", "64 of its 64")


def test_gradcheck_all_combinations(capsys):
    code, out, _ = run_cli(capsys, "gradcheck", "--json")
    assert code == 0
    lines = json_lines(out)
    checks = [line for line in lines if line["event"] == "check"]
    assert len(checks) > 100 and all(c["status"] == "ok" for c in checks)
    assert lines[-1] == {
        "event": "summary",
        "checked": len(checks),
        "failed": 0,
        "tol": 1e-6,
        "eps": 1e-6,
    }


def test_gradcheck_config_and_failing_tolerance(capsys):
    code, out, _ = run_cli(capsys, "gradcheck", CONFIGS / "digits.yaml")
    assert code == 0 and "4 passed, 0 failed" in out
    # a step this large has O(eps^2) truncation error, far above rounding: it must fail
    code, out, err = run_cli(capsys, "gradcheck", CONFIGS / "iris.yaml", "--eps", "0.01")
    assert code == 1
    assert_one_line_error(err, "over --tol")


def test_validate(capsys):
    code, out, _ = run_cli(capsys, "validate", CONFIGS / "digits.yaml")
    assert code == 0 and "4810 parameters" in out
    code, out, _ = run_cli(
        capsys, "validate", CONFIGS / "digits.yaml", "--json", "--set", "model.layers[0].units=32"
    )
    assert json.loads(out)["parameters"] == 64 * 32 + 32 + 32 * 10 + 10


def test_datasets_lists_the_builtins(capsys):
    code, out, _ = run_cli(capsys, "datasets", "--json")
    assert code == 0
    by_name = {d["name"]: d for d in json_lines(out)}
    assert by_name["digits"]["rows"] == 1797 and by_name["iris"]["classes"] == 3
    assert set(by_name) >= {
        "xor",
        "moons",
        "circles",
        "spirals",
        "iris",
        "digits",
        "wine",
        "breast_cancer",
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "missing.yaml"], ["missing.yaml", "not found"]),
        (
            ["train", CONFIGS / "digits.yaml", "--set", "optimizer.lr=-0.1"],
            ["digits.yaml", "optimizer.lr", "must be > 0", "-0.1"],
        ),
        (
            ["train", CONFIGS / "digits.yaml", "--set", "optimizer.lrr=0.1"],
            ["optimizer.lrr", "did you mean 'lr'"],
        ),
        (["train", CONFIGS / "digits.yaml", "--set", "seed"], ["KEY=VALUE"]),
        (
            ["train", CONFIGS / "digits.yaml", "--set", "model.layers[1].units=3"],
            ["model.layers[1].units", "10 classes"],
        ),
        (["train"], ["Missing argument"]),
        (["train", CONFIGS / "digits.yaml", "--bogus"], ["--bogus"]),
        (["eval", "--weights", "nope.npz"], ["nope.npz", "not found"]),
        (["eval", "--weights", CONFIGS / "digits.yaml"], ["not a readable weights file"]),
        (["gradcheck", "--eps", "0"], ["--eps"]),
        (["predict", "--weights", "nope.npz", "--data", "x.csv"], ["nope.npz"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_files(capsys, tmp_path, args, words):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(capsys):
    code, _, err = run_cli(capsys, "--debug", "train", "missing.yaml")
    assert code == 2 and "Traceback" in err


def test_divergence_exits_3_and_keeps_finite_weights(capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "train",
        CONFIGS / "regression.yaml",
        "--json",
        "--set",
        "optimizer=sgd",
        "--set",
        "optimizer.lr=1000",
        "--set",
        "training.epochs=5",
    )
    assert code == 3
    assert_one_line_error(err, "diverged", "epoch", "batch")
    summary = json_lines(out)[-1]
    assert summary["event"] == "summary" and summary["stop_reason"] == "diverged"
    with np.load(tmp_path / "runs" / "regression" / "weights.npz", allow_pickle=False) as z:
        assert all(np.isfinite(z[k]).all() for k in ("W0", "b0", "W1", "b1", "W2", "b2"))


def test_train_starts_from_weights(digits_run, capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "train",
        CONFIGS / "digits.yaml",
        "--json",
        "--weights",
        "runs/digits/weights.npz",
        "--set",
        "training.epochs=1",
        "--out",
        "runs/again",
    )
    assert code == 0, err
    # Starting from trained weights, the first epoch is far better than a fresh start's.
    assert json_lines(out)[0]["train_loss"] < digits_run[0]["train_loss"] / 2
    code, _, err = run_cli(
        capsys,
        "train",
        CONFIGS / "digits.yaml",
        "--weights",
        "runs/digits/weights.npz",
        "--set",
        "model.layers[0].units=32",
    )
    assert code == 2
    assert_one_line_error(err, "--weights", "same architecture")
    assert not (tmp_path / "runs" / "digits-2").exists()


def test_same_seed_gives_identical_weights_and_metrics(capsys, tmp_path):
    for out_dir in ("a", "b"):
        assert (
            run_cli(capsys, "train", CONFIGS / "digits.yaml", "-q", "--out", out_dir, *FAST)[0] == 0
        )
    with np.load("a/weights.npz") as a, np.load("b/weights.npz") as b:
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k

    def metrics_without_time(d):
        with open(f"{d}/metrics.csv") as f:
            return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]

    assert metrics_without_time("a") == metrics_without_time("b")
    assert (
        run_cli(
            capsys, "train", CONFIGS / "digits.yaml", "-q", "--out", "c", *FAST, "--set", "seed=1"
        )[0]
        == 0
    )
    with np.load("a/weights.npz") as a, np.load("c/weights.npz") as c:
        assert not np.array_equal(a["W0"], c["W0"])


def test_weights_are_not_a_pickle(digits_run, tmp_path):
    with zipfile.ZipFile(tmp_path / "runs" / "digits" / "weights.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())


def test_module_entry_point_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "backprop_cli",
            "train",
            str(CONFIGS / "xor.yaml"),
            "--json",
            "--set",
            "training.epochs=5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[-1]["epochs"] == 5
    proc = subprocess.run(
        [sys.executable, "-m", "backprop_cli", "train", "nope.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_keeps_the_completed_epochs_and_exits_130(tmp_path, sig):
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backprop_cli",
            "train",
            str(CONFIGS / "digits.yaml"),
            "--json",
            "--set",
            "training.epochs=100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    first = proc.stdout.readline()  # wait for a completed epoch
    assert json.loads(first)["epoch"] == 1
    time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert_one_line_error(err, "interrupted")
    summary = json_lines(out)[-1]
    assert summary["event"] == "summary" and summary["stop_reason"] == "interrupted"
    run = tmp_path / "runs" / "digits"
    with open(run / "metrics.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == list(range(1, len(epochs) + 1))
    with np.load(run / "weights.npz", allow_pickle=False) as z:
        assert json.loads(str(z["spec"]))["epoch"] == epochs[-1]
    assert not list(run.glob(".*tmp*"))  # no temporary file left behind


def test_parquet_data_file(capsys, tmp_path, write_config):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(CONFIGS.parent / "datasets" / "iris.csv")
    frame.to_parquet(tmp_path / "iris.parquet")
    cfg = write_config(
        "data: {path: iris.parquet, target: target, validation: 0.2, test: 0.2}\n"
        "model: {layers: [{units: 8, activation: tanh}, {units: 3, activation: softmax}]}\n"
        "optimizer: {name: adam, lr: 0.01}\ntraining: {epochs: 30, batch_size: 16}\n"
    )
    code, out, err = run_cli(capsys, "train", cfg, "--json")
    assert code == 0, err
    assert json_lines(out)[-1]["test"]["accuracy"] >= 0.8
    code, out, _ = run_cli(capsys, "eval", "-w", "runs/run/weights.npz", "--json")
    assert code == 0 and json.loads(out)["rows"] == 30


def test_eval_refuses_a_label_never_seen_in_training(capsys, tmp_path):
    assert run_cli(capsys, "train", CONFIGS / "iris.yaml", "-q", *FAST)[0] == 0
    rows = (CONFIGS.parent / "datasets" / "iris.csv").read_text().splitlines()
    (tmp_path / "odd.csv").write_text(rows[0] + "\n" + rows[1].rsplit(",", 1)[0] + ",daisy\n")
    code, _, err = run_cli(capsys, "eval", "-w", "runs/iris/weights.npz", "--data", "odd.csv")
    assert code == 2
    assert_one_line_error(err, "odd.csv", "'daisy'", "setosa")


def test_version(capsys):
    from backprop_cli import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"backprop {__version__}"


@pytest.mark.parametrize("argv", [["--version", "--verbose"], ["--verbose", "--version"]])
def test_version_verbose_says_whether_the_compiled_kernels_are_in_use(capsys, monkeypatch, argv):
    """The one place a user sees why training runs on NumPy, whichever order the options come in."""
    from backprop_cli import __version__
    from backprop_cli.nn import fast

    monkeypatch.setenv("BACKPROP_FAST", "0")
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"backprop {__version__}",
        "compiled kernels: not in use (BACKPROP_FAST=0)",
    ]
    monkeypatch.delenv("BACKPROP_FAST")
    assert main(argv) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    if fast.library() is not None:
        assert last == f"compiled kernels: in use ({fast.where})"
        assert os.path.isabs(fast.where)
    else:
        assert last == f"compiled kernels: not in use ({fast.why_not})"


def test_closed_stdout_lets_the_run_finish(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backprop_cli",
            "train",
            str(CONFIGS / "iris.yaml"),
            "--set",
            "training.epochs=20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout.readline().startswith("epoch 1/20")
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == ""
    summary = json.loads((tmp_path / "runs/iris/summary.json").read_text())
    assert summary["stop_reason"] == "completed" and summary["epochs"] == 20


def test_interrupt_outside_training_says_so(capsys, monkeypatch):
    import backprop_cli.data as data

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "describe_builtins", interrupted)
    assert main(["datasets"]) == 130
    assert_one_line_error(capsys.readouterr().err, "interrupted")


def test_eval_and_predict_take_the_trained_columns_by_name(capsys, tmp_path):
    assert run_cli(capsys, "train", CONFIGS / "iris.yaml", "-q", *FAST)[0] == 0
    lines = (CONFIGS.parent / "datasets" / "iris.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines]
    # columns reversed, and an id column in front: the same rows, in another layout
    shuffled = "\n".join(
        ",".join([("id" if i == 0 else str(i)), *r[::-1]]) for i, r in enumerate(rows)
    )
    (tmp_path / "rev.csv").write_text(shuffled + "\n")
    code, out, _ = run_cli(
        capsys, "eval", "-w", "runs/iris/weights.npz", "--data", "rev.csv", "--json"
    )
    full = CONFIGS.parent / "datasets" / "iris.csv"
    code2, out2, _ = run_cli(
        capsys, "eval", "-w", "runs/iris/weights.npz", "--data", full, "--json"
    )
    assert code == code2 == 0
    assert json.loads(out)["accuracy"] == json.loads(out2)["accuracy"]
    assert json.loads(out)["loss"] == pytest.approx(json.loads(out2)["loss"])


def test_predict_overwrite_writes_through_a_symlink_and_dash_is_stdout(capsys, tmp_path):
    assert run_cli(capsys, "train", CONFIGS / "iris.yaml", "-q", *FAST)[0] == 0
    iris = CONFIGS.parent / "datasets" / "iris.csv"
    (tmp_path / "target.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to("target.csv")
    code, _, _ = run_cli(
        capsys,
        "predict",
        "-w",
        "runs/iris/weights.npz",
        "--data",
        iris,
        "-o",
        "link.csv",
        "--overwrite",
    )
    assert code == 0
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "target.csv").read_text().splitlines()[0] == "prediction"
    code, out, _ = run_cli(
        capsys, "predict", "-w", "runs/iris/weights.npz", "--data", iris, "-o", "-"
    )
    assert code == 0 and out.splitlines()[0] == "prediction" and len(out.splitlines()) == 151


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "somefile").write_text("mine")
    code, _, err = run_cli(capsys, "train", CONFIGS / "iris.yaml", "--out", "somefile", *FAST)
    assert code == 2
    assert_one_line_error(err, "somefile", "is a file")
    assert (tmp_path / "somefile").read_text() == "mine" and not (tmp_path / "somefile-2").exists()


def test_glorot_is_xavier():
    import numpy as np

    from backprop_cli.nn import Network

    a, b = Network([30, 20], ["identity"]), Network([30, 20], ["identity"])
    a.init("xavier", np.random.default_rng(3))
    b.init("glorot", np.random.default_rng(3))
    assert np.array_equal(a.params, b.params)
