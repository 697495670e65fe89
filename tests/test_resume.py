"""Never losing work: checkpoints every epoch, interrupts, kill -9, and bit-identical resume."""

import csv
import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from backprop_cli.cli import main

from .conftest import CONFIGS

# Dropout, a plateau schedule with warmup and early stopping: every piece of state a resume
# must restore (RNG streams, optimizer moments, schedule and early-stopping counters).
# 200 epochs: the fused step trains a digits epoch in about a millisecond, and the signal must
# land while the run is still training.
EPOCHS = 200
SETS = [
    f"training.epochs={EPOCHS}",
    "model.layers[0].dropout=0.2",
    "training.warmup={total_iters: 3, start_factor: 0.2}",
    "training.lr_schedule={name: reduce_on_plateau, patience: 2, factor: 0.5}",
    "training.early_stopping={patience: 1000}",
]


def cli(*args):
    return [
        sys.executable,
        "-m",
        "backprop_cli",
        "train",
        str(CONFIGS / "digits.yaml"),
        "--json",
        *[a for s in SETS for a in ("--set", s)],
        *args,
    ]


def weights(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def metrics(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    proc = subprocess.run(cli("--out", str(d / "run")), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return d / "run"


@pytest.mark.parametrize(
    ("sig", "interval", "least"),
    [
        (signal.SIGINT, "1.0", 6),  # an interrupt saves every completed epoch
        (signal.SIGKILL, "0", 6),  # files after every epoch
        (signal.SIGKILL, "1.0", 1),  # at most a second of training lost
    ],
    ids=["sigint", "sigkill-every-epoch", "sigkill-every-second"],
)
def test_interrupted_run_resumes_bit_identical(reference, tmp_path, sig, interval, least):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        cli("--out", str(run), "--set", f"output.save_interval_s={interval}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(6):  # let a few epochs complete
        assert json.loads(proc.stdout.readline())["event"] == "epoch"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    if sig == signal.SIGINT:
        assert "resume with: backprop train" in err and "--resume" in err
    done = len(metrics(run / "metrics.csv"))
    assert least <= done < EPOCHS
    resumed = subprocess.run(
        cli("--out", str(run), "--resume"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    epochs = [
        json.loads(line)["epoch"]
        for line in resumed.stdout.splitlines()
        if json.loads(line)["event"] == "epoch"
    ]
    # metrics.csv is written just before the checkpoint: a kill between them leaves it one ahead
    assert epochs[0] in (done, done + 1) and epochs[-1] == EPOCHS
    ref, got = weights(reference / "weights.npz"), weights(run / "weights.npz")
    for k in ref:
        if k != "spec":
            assert np.array_equal(ref[k], got[k]), k
    assert metrics(run / "metrics.csv") == metrics(
        reference / "metrics.csv"
    )  # each epoch once, same numbers
    ref_ckpt, got_ckpt = weights(reference / "checkpoint.npz"), weights(run / "checkpoint.npz")
    assert np.array_equal(ref_ckpt["params"], got_ckpt["params"])
    assert not list(run.glob(".*tmp*"))


def test_raising_epochs_continues_a_finished_run(capsys, tmp_path):
    base = ["train", str(CONFIGS / "iris.yaml"), "--json"]
    assert main([*base, "--set", "training.epochs=6", "--out", "straight"]) == 0
    assert main([*base, "--set", "training.epochs=3", "--out", "grown"]) == 0
    assert main([*base, "--set", "training.epochs=6", "--out", "grown", "--resume"]) == 0
    capsys.readouterr()
    a, b = weights("straight/weights.npz"), weights("grown/weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "spec")
    assert metrics("straight/metrics.csv") == metrics("grown/metrics.csv")
    # resuming a finished run is a no-op that says so
    assert main([*base, "--set", "training.epochs=6", "--out", "grown", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "nothing to resume" in json.loads(out)["message"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("model.layers[0].units=32", "model.layers[0].units"),
        ("data.test=0.3", "data.test"),
        ("optimizer.lr=0.5", "optimizer.lr"),
        ("seed=3", "seed"),
    ],
)
def test_resume_refuses_a_changed_config(capsys, tmp_path, change, key):
    base = ["train", str(CONFIGS / "iris.yaml"), "--set", "training.epochs=2", "--out", "r", "-q"]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    assert main([*base, "--resume", "--set", change]) == 2
    err = capsys.readouterr().err
    assert key in err and "cannot resume" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_resume_needs_a_checkpoint(capsys, tmp_path):
    assert main(["train", str(CONFIGS / "iris.yaml"), "--out", "empty", "--resume"]) == 2
    assert "no checkpoint.npz" in capsys.readouterr().err
    # without --out, --resume continues the configured output.dir itself (runs/iris)
    assert main(["train", str(CONFIGS / "iris.yaml"), "--resume"]) == 2
    assert "runs/iris: no checkpoint.npz" in capsys.readouterr().err
    assert main(["train", str(CONFIGS / "iris.yaml"), "-q", "--set", "training.epochs=2"]) == 0
    assert (
        main(["train", str(CONFIGS / "iris.yaml"), "-q", "--set", "training.epochs=3", "--resume"])
        == 0
    )
    with open(tmp_path / "runs/iris/metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]
    assert not (tmp_path / "runs/iris-2").exists()


def test_checkpoint_holds_the_whole_training_state(capsys, tmp_path):
    assert (
        main(
            [
                "train",
                str(CONFIGS / "iris.yaml"),
                "-q",
                "--set",
                "training.epochs=2",
                "--set",
                "model.layers[0].dropout=0.1",
                "--set",
                "training.early_stopping={}",
            ]
        )
        == 0
    )
    with np.load(tmp_path / "runs/iris/checkpoint.npz", allow_pickle=False) as z:
        assert {"params", "opt_exp_avg", "opt_exp_avg_sq", "best_params", "state"} <= set(z.files)
        state = json.loads(str(z["state"]))
    assert (
        state["epoch"] == 2 and state["opt_t"] == 2 * 6
    )  # 90 rows / 16 per batch = 6 steps per epoch
    assert set(state["rngs"]) == {"data", "split", "init", "shuffle", "dropout"}
    assert "rows" not in state  # the rows live in metrics.csv, read back on resume
    assert state["early"]["best_epoch"] in (1, 2)


def test_resume_refuses_a_metrics_file_that_lost_epochs(capsys, tmp_path):
    base = ["train", str(CONFIGS / "iris.yaml"), "-q", "--out", "r"]
    assert main([*base, "--set", "training.epochs=3"]) == 0
    lines = (tmp_path / "r/metrics.csv").read_text().splitlines()
    (tmp_path / "r/metrics.csv").write_text("\n".join(lines[:2]) + "\n")  # header and epoch 1
    assert main([*base, "--set", "training.epochs=5", "--resume"]) == 2
    assert "does not list epochs 1-3" in capsys.readouterr().err


def test_should_stop_stops_one_run_and_keeps_its_epochs(tmp_path):
    from backprop_cli.config import load_config
    from backprop_cli.training import STOP, Run

    run = Run(load_config(CONFIGS / "iris.yaml", ["training.epochs=10"]), "iris.yaml", out="r")
    run.start()
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for record in run.epochs(should_stop=lambda: len(seen) >= 3):
            seen.append(record["epoch"])
    assert seen == [1, 2, 3] and not STOP.requested  # the process-wide flag was never touched
    assert json.loads((tmp_path / "r/summary.json").read_text())["stop_reason"] == "interrupted"
    assert metrics(tmp_path / "r/metrics.csv")[-1]["epoch"] == "3"


def test_a_run_written_before_a_key_existed_resumes(capsys, tmp_path):
    """A run directory from before model.bias_init, bias_init_scale and
    optimizer.decay_biases: its config.yaml lacks them (they mean their defaults) and its
    checkpoint's digest is of that config; it resumes, and a changed value is still refused."""
    import hashlib

    import yaml

    base = ["train", str(CONFIGS / "iris.yaml"), "--out", "r", "-q"]
    assert main([*base, "--set", "training.epochs=2"]) == 0
    cfg_file = tmp_path / "r" / "config.yaml"
    old = yaml.safe_load(cfg_file.read_text())
    for section, key in (("model", "bias_init"), ("model", "bias_init_scale")):
        del old[section][key]
    del old["optimizer"]["decay_biases"]
    cfg_file.write_text(yaml.safe_dump(old, sort_keys=False))
    with np.load(tmp_path / "r" / "checkpoint.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(str(arrays.pop("state")))
    key = {k: old.get(k) for k in ("seed", "data", "model", "loss")}
    state["config_sha256_model"] = hashlib.sha256(
        json.dumps(key, sort_keys=True).encode()
    ).hexdigest()
    arrays["state"] = np.array(json.dumps(state))
    np.savez(tmp_path / "r" / "checkpoint.npz", **arrays)
    assert (
        main([*base, "--set", "training.epochs=3", "--set", "model.bias_init=normal", "--resume"])
        == 2
    )
    assert "model.bias_init: cannot resume" in capsys.readouterr().err
    assert main([*base, "--set", "training.epochs=3", "--resume"]) == 0
    assert [r["epoch"] for r in metrics(tmp_path / "r" / "metrics.csv")] == ["1", "2", "3"]
