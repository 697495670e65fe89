"""What a hostile or careless user found (issue 13), each case a regression test: temp files
that cannot be redirected, a directory owned by one run at a time, predictions matched by
column name, gates that fail on NaN, bounded resources, bad input that is exit 2, output a
shell can trust."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backprop_cli.store.files import remove_stale_temp_files, write_text

from .conftest import CONFIGS, run_cli

IRIS = CONFIGS / "iris.yaml"


# ---------------------------------------------------------------------------- temp files (3)


def test_a_planted_symlink_at_the_temp_name_is_not_followed(tmp_path):
    """The temporary file used to be .NAME.tmp-PID, opened following symlinks: a link planted
    there made the writer overwrite the file it pointed to."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / f".metrics.csv.tmp-{os.getpid()}").symlink_to(victim)
    write_text(run / "metrics.csv", "epoch,train_loss\n1,0.5\n")
    assert victim.read_text() == "precious\n"
    assert (run / "metrics.csv").read_text() == "epoch,train_loss\n1,0.5\n"
    assert not (run / "metrics.csv").is_symlink()


def test_written_files_keep_the_usual_permissions(tmp_path):
    write_text(tmp_path / "f.txt", "x")
    mode = (tmp_path / "f.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_resume_removes_the_temp_files_of_dead_processes_only(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / "r" / f".weights.npz.tmp-{dead_pid}-abc123"
    live = tmp_path / "r" / f".weights.npz.tmp-{os.getpid()}-def456"
    stale.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    code, _, err = run_cli(
        capsys, "train", IRIS, "--out", tmp_path / "r", "--resume", "--quiet",
        "--set", "training.epochs=61",
    )  # fmt: skip
    assert code == 0, err
    assert not stale.exists() and live.exists()
    assert remove_stale_temp_files(Path(tmp_path / "r")) == []


# ---------------------------------------------------------------------------- predict by name (0)

TABLE_CONFIG = """name: vote
data: {path: train.csv, target: vote, validation: 0.2, test: 0.0}
model:
  layers: [{units: 8, activation: tanh}, {units: 2, activation: softmax}]
training: {epochs: 3, batch_size: 16}
"""


def _vote_table(rng, n: int = 200):
    import numpy as np
    import pandas as pd

    income = rng.normal(50, 15, n)
    age = rng.normal(40, 12, n)
    vote = np.where(income + rng.normal(0, 10, n) > 50, "yes", "no")
    return pd.DataFrame({"income": income, "age": age, "vote": vote})


def test_predict_matches_columns_by_name_never_by_position(capsys, tmp_path):
    """Dropping a feature from a file that still holds the target used to make predict read
    the target as that feature (by position) and exit 0 with changed predictions."""
    import numpy as np
    import pandas as pd

    table = _vote_table(np.random.default_rng(0))
    table.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "c.yaml").write_text(TABLE_CONFIG)
    code, _, err = run_cli(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "run", "-q")
    assert code == 0, err
    w = tmp_path / "run" / "weights.npz"

    def predict(frame: pd.DataFrame, header: bool = True):
        frame.to_csv(tmp_path / "in.csv", index=False, header=header)
        code, out, err = run_cli(
            capsys, "predict", "-w", w, "--data", tmp_path / "in.csv", "--proba"
        )
        return code, out, err

    code, reference, err = predict(table[["income", "age"]])
    assert code == 0, err
    code, out, _ = predict(table[["age", "vote", "income"]])  # reordered, target among them
    assert code == 0 and out == reference
    code, out, _ = predict(table[["income", "age"]], header=False)  # no header: by position
    assert code == 0 and out == reference
    for frame in (table[["age", "vote"]], table.rename(columns={"income": "earnings"})):
        code, out, err = predict(frame)
        assert code == 2 and out == ""
        assert "no column 'income'" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "eval", "-w", w, "--data", tmp_path / "in.csv")
    assert code == 2 and "no column 'income'" in err


def test_eval_on_a_file_matches_a_builtin_models_columns_by_name(capsys, tmp_path):
    """A model trained on a built-in (features x0, x1) used to take any file's columns by position."""
    code, _, err = run_cli(capsys, "train", CONFIGS / "xor.yaml", "--out", tmp_path / "x", "-q")
    assert code == 0, err
    (tmp_path / "d.csv").write_text("a,b,class\n0,1,1\n1,1,0\n")
    code, _, err = run_cli(
        capsys, "eval", "-w", tmp_path / "x" / "weights.npz", "--data", tmp_path / "d.csv"
    )
    assert code == 2 and "no column 'x0'" in err
    (tmp_path / "d.csv").write_text("x1,x0,class\n1,0,1\n1,1,0\n")
    code, out, err = run_cli(
        capsys, "eval", "-w", tmp_path / "x" / "weights.npz", "--data", tmp_path / "d.csv", "--json"
    )
    assert code == 0, err


# ---------------------------------------------------------------------------- gates and NaN (4)


def _rewritten(weights: Path, out: Path, **changes) -> Path:
    """A copy of a weights file with arrays replaced (np.load: the spec is a plain string)."""
    import numpy as np

    with np.load(weights) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(out, **arrays)
    return out


def test_outputs_that_overflow_fail_eval_and_predict_with_exit_3(capsys, tmp_path):
    """Finite weights whose outputs overflow used to give loss null, passed: true, exit 0 (and
    empty probability cells from predict)."""
    import numpy as np

    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    with np.load(tmp_path / "r" / "weights.npz") as z:
        W1 = z["W1"]
    # finite float32 weights (3e38 < 3.4e38) whose products overflow: z^1 = +-inf, a^1 = NaN
    huge = np.full_like(W1, 3e38)
    big = _rewritten(tmp_path / "r" / "weights.npz", tmp_path / "big.npz", W1=huge)
    code, out, err = run_cli(capsys, "eval", "-w", big, "--max-loss", "0.5", "--json")
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and "not finite" in err and "layer 1" in err
    (tmp_path / "in.csv").write_text(
        "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n"
    )
    code, out, err = run_cli(
        capsys,
        "predict",
        "-w",
        big,
        "--data",
        tmp_path / "in.csv",
        "--proba",
        "-o",
        tmp_path / "p.csv",
    )
    assert code == 3 and "not finite" in err and not (tmp_path / "p.csv").exists()


def test_every_gate_fails_on_nan():
    from backprop_cli.inference import GATES, gate_failures

    nan = float("nan")
    for option, (key, _, task) in GATES.items():
        result = {"task": task or "classification", key: nan}
        assert gate_failures(result, {option: 0.5}), option
    ok = {"task": "classification", "loss": 0.1, "accuracy": 0.9}
    assert gate_failures(ok, {"--min-accuracy": 0.5, "--max-loss": 0.5}) == []


def test_float64_weights_beyond_a_float32_spec_are_refused_at_load(capsys, tmp_path):
    import numpy as np

    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    with np.load(tmp_path / "r" / "weights.npz") as z:
        W0 = z["W0"].astype(np.float64)
    W0[0, 0] = 1e300
    bad = _rewritten(tmp_path / "r" / "weights.npz", tmp_path / "bad.npz", W0=W0)
    code, _, err = run_cli(capsys, "eval", "-w", bad)
    assert code == 2 and "W0 holds values beyond float32 range" in err


# ---------------------------------------------------------------------------- output to trust (8)


def test_the_printed_resume_command_is_shell_quoted(tmp_path):
    """A run directory named 'x;touch PWNED' used to give a resume command that ran touch."""
    import shlex

    from backprop_cli.config import load_config
    from backprop_cli.training import Run

    cfg = load_config(IRIS)
    run = Run(cfg, str(IRIS), out=str(tmp_path / "x;touch PWNED"))
    run.start()
    message = str(run.interruption(IRIS, ["name=a b"]))
    command = shlex.split(message.split("resume with: ")[1])
    assert command[command.index("--out") + 1] == str(tmp_path / "x;touch PWNED")
    assert command[-2:] == ["--set", "name=a b"]


def _control_table(tmp_path) -> Path:
    rows = ["a,b,label"] + [
        f"{i % 7 / 7},{i % 5 / 5},{'[/x]' if i % 2 else 'ok' + chr(27) + '[31m'}" for i in range(60)
    ]
    (tmp_path / "ctl.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "ctl.yaml").write_text(
        "name: ctl\ndata: {path: ctl.csv, target: label}\nmodel:\n  layers: [{units: 4, "
        "activation: tanh}, {units: 2, activation: softmax}]\ntraining: {epochs: 2}\n"
    )
    return tmp_path / "ctl.yaml"


def test_labels_from_data_reach_the_terminal_as_text(capsys, tmp_path):
    """A class label '[/x]' used to crash eval's table (Rich markup: exit 70), and an escape
    sequence in a label or column name reached the terminal raw."""
    config = _control_table(tmp_path)
    code, _, err = run_cli(capsys, "train", config, "--out", tmp_path / "run", "-q")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "-w", tmp_path / "run" / "weights.npz")
    assert code == 0, err
    assert "[/x]" in out and "\x1b" not in out and "ok\\x1b[31m" in out
    code, out, err = run_cli(capsys, "trace", config)
    assert code == 0 and "\x1b" not in out, err


def test_an_empty_out_is_an_error(capsys):
    code, _, err = run_cli(capsys, "train", IRIS, "--out", "")
    assert code == 2 and "--out: expected a directory path" in err


def test_yaml_merge_keys_work(capsys, tmp_path):
    (tmp_path / "m.yaml").write_text(
        "data: {dataset: iris}\nmodel:\n  layers:\n    - &hidden {units: 16, activation: tanh}\n"
        "    - <<: *hidden\n      units: 8\n    - {units: 3, activation: softmax}\n"
    )
    code, out, err = run_cli(capsys, "validate", tmp_path / "m.yaml", "--json")
    assert code == 0, err
    import json

    layers = json.loads(out)["config"]["model"]["layers"]
    assert [(x["units"], x["activation"]) for x in layers] == [
        (16, "tanh"),
        (8, "tanh"),
        (3, "softmax"),
    ]
    (tmp_path / "m.yaml").write_text("data: {dataset: iris}\nmodel:\n  layers:\n    - <<: 3\n")
    code, _, err = run_cli(capsys, "validate", tmp_path / "m.yaml")
    assert code == 2 and "for merging" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------- exit 2, not 70 (7)


def test_a_5000_digit_integer_is_bad_input(capsys, tmp_path):
    digits = "1" + "0" * 5000
    (tmp_path / "c.yaml").write_text(IRIS.read_text().replace("seed: 0", f"seed: {digits}"))
    code, _, err = run_cli(capsys, "validate", tmp_path / "c.yaml")
    assert code == 2 and "more than 4300 digits" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "validate", IRIS, "--set", f"seed={digits}")
    assert code == 2 and "more than 4300 digits" in err


def test_a_fifo_as_config_is_refused_without_hanging(capsys, tmp_path):
    os.mkfifo(tmp_path / "c.yaml")
    code, _, err = run_cli(capsys, "validate", tmp_path / "c.yaml")
    assert code == 2 and "not a regular file" in err


def test_runs_skips_a_fifo_and_a_deeply_nested_summary(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "runs" / "good", "-q")
    assert code == 0, err
    (tmp_path / "runs" / "deep").mkdir()
    (tmp_path / "runs" / "deep" / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "runs" / "pipe").mkdir()
    os.mkfifo(tmp_path / "runs" / "pipe" / "summary.json")
    code, out, err = run_cli(capsys, "runs", tmp_path / "runs", "--json")
    assert code == 0, err
    assert [json_line["name"] for json_line in map(__import__("json").loads, out.splitlines())] == [
        "good"
    ]
    assert "deep/summary.json: skipped" in err and "pipe/summary.json: skipped" in err


def test_a_checkpoint_claiming_a_huge_step_count_is_bad_input(capsys, tmp_path):
    import json

    import numpy as np

    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    ckpt = tmp_path / "r" / "checkpoint.npz"
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(str(arrays["state"]))
    state["opt_t"] = 10**400
    arrays["state"] = np.array(json.dumps(state))
    np.savez(ckpt, **arrays)
    code, _, err = run_cli(
        capsys, "train", IRIS, "--out", tmp_path / "r", "--resume", "--set", "training.epochs=99"
    )
    assert code == 2 and "opt_t" in err and err.count("\n") == 1


def _backprop(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "backprop_cli", *map(str, args)], capture_output=True, **kw
    )


def test_a_closed_or_full_stdout_does_not_stop_training(tmp_path):
    for name, stdout in (("full", open(os.devnull.replace("null", "full"), "w")), ("closed", None)):
        out = tmp_path / name
        cmd = [sys.executable, "-m", "backprop_cli", "train", str(IRIS), "--out", str(out)]
        if stdout is None:  # >&-: the child starts with file descriptor 1 closed
            proc = subprocess.run(cmd, stderr=subprocess.PIPE, close_fds=True, pass_fds=(),
                                  preexec_fn=lambda: os.close(1))  # fmt: skip
        else:
            with stdout:
                proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
        assert proc.returncode == 0, (name, proc.stderr)
        assert (out / "summary.json").exists() and (out / "weights.npz").exists()


def test_eval_into_head_exits_quietly_with_its_own_code(tmp_path):
    """`eval | head -1` used to exit 1 with no message (click's broken-pipe exit)."""
    code = _backprop("train", IRIS, "--out", tmp_path / "r", "-q").returncode
    assert code == 0
    for args, want in (([], 0), (["--max-loss", "0.0000001"], 1)):
        read, write = os.pipe()
        os.close(read)  # the reader has gone before the first line, as after head -1
        with os.fdopen(write, "wb") as stdout:
            proc = subprocess.run(
                [sys.executable, "-m", "backprop_cli", "eval", "-w", str(tmp_path / "r" / "weights.npz"), *args],
                stdout=stdout, stderr=subprocess.PIPE,
            )  # fmt: skip
        err = proc.stderr.decode()
        assert proc.returncode == want, err
        assert "Traceback" not in err and err.count("\n") == want  # the gate's one line


# ---------------------------------------------------------------------------- resources (6)

HUGE = """name: huge
data: {dataset: iris}
model:
  layers: [{units: 46000}, {units: 46000}, {units: 3, activation: softmax}]
"""


def test_a_network_that_cannot_fit_in_memory_is_refused_before_it_is_built(capsys, tmp_path):
    """Two 46,000-unit layers (under the 2^31-parameter bound) used to make validate grow to
    22 GB; now the memory the config implies is weighed against what is available."""
    import tracemalloc

    (tmp_path / "huge.yaml").write_text(HUGE)
    tracemalloc.start()
    try:
        code, _, err = run_cli(capsys, "validate", tmp_path / "huge.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "GB of memory available" in err and "2,116,414,003 parameters" in err
    assert peak < 100e6


def test_the_memory_bound_counts_the_optimizer_and_the_batch(monkeypatch, capsys):
    from backprop_cli.config import load_config
    from backprop_cli.training import build

    cfg = load_config(IRIS)
    sgd = load_config(IRIS, ["optimizer.name=sgd"])
    big_batch = load_config(IRIS, ["training.batch_size=1000"])
    need = build.training_memory(cfg, 4, 1000)
    assert build.training_memory(sgd, 4, 1000) < need  # one state buffer, Adam's three
    assert build.training_memory(big_batch, 4, 1000) > need
    monkeypatch.setattr(build, "available_memory", lambda: need - 1)
    code, _, err = run_cli(capsys, "validate", IRIS)
    assert code == 2 and "more than the" in err
    monkeypatch.setattr(build, "available_memory", lambda: need)
    code, _, err = run_cli(capsys, "validate", IRIS)
    assert code == 0, err


def test_a_table_of_20000_columns_loads(capsys, tmp_path):
    """The column checks were quadratic (minutes for 10^5 columns); they are sets now."""
    n = 20_000
    header = ",".join(f"c{i}" for i in range(n)) + ",y\n"
    rows = "".join(
        ",".join(str((i * j) % 3) for i in range(n)) + f",{'ab'[j % 2]}\n" for j in range(20)
    )
    (tmp_path / "wide.csv").write_text(header + rows)
    (tmp_path / "w.yaml").write_text(
        "data: {path: wide.csv, target: y, validation: 0.2, test: 0.2}\n"
        "model: {layers: [{units: 2, activation: softmax}]}\n"
    )
    code, out, err = run_cli(capsys, "validate", tmp_path / "w.yaml")
    assert code == 0 and f"{n * 2 + 2} parameters" in out, err


def test_eval_checks_a_built_in_before_regenerating_it(capsys, tmp_path):
    """A spec claiming n_samples: 10^7 of another dataset used to regenerate 870 MB first."""
    import json
    import tracemalloc

    import numpy as np

    code, _, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    with np.load(tmp_path / "r" / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    spec = json.loads(str(arrays["spec"]))
    spec["data"].update(dataset="xor", n_samples=10_000_000)
    arrays["spec"] = np.array(json.dumps(spec))
    np.savez(tmp_path / "forged.npz", **arrays)
    tracemalloc.start()
    try:
        code, _, err = run_cli(capsys, "eval", "-w", tmp_path / "forged.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "dataset xor: feature columns x0, x1" in err
    assert peak < 50e6


# ---------------------------------------------------------------------------- one run, one directory (1, 5)

LONG = IRIS.read_text().replace("epochs: 60", "epochs: 100000")


def test_an_existing_directory_is_never_adopted(capsys, tmp_path):
    """An empty directory used to be adopted: another run may just have made it, and then
    both wrote the same files."""
    (tmp_path / "D").mkdir()
    code, out, err = run_cli(capsys, "train", IRIS, "--out", tmp_path / "D", "--json")
    assert code == 0, err
    assert __import__("json").loads(out.splitlines()[-1])["run_dir"] == str(tmp_path / "D-2")
    assert list((tmp_path / "D").iterdir()) == []


def test_out_dot_is_an_error_not_a_sibling_directory(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    code, _, err = run_cli(capsys, "train", IRIS, "--out", ".")
    assert code == 2 and "a run makes a directory of its own" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert not (tmp_path.parent / f"{tmp_path.name}-2").exists()


def test_two_runs_started_together_get_a_directory_each(tmp_path):
    (tmp_path / "c.yaml").write_text(IRIS.read_text().replace("epochs: 60", "epochs: 5"))
    for attempt in range(3):
        out = tmp_path / f"D{attempt}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "backprop_cli",
                    "train",
                    str(tmp_path / "c.yaml"),
                    "--out",
                    str(out),
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        dirs = []
        for p in procs:
            out_text, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            dirs.append(__import__("json").loads(out_text.splitlines()[-1])["run_dir"])
        assert sorted(dirs) == [str(out), f"{out}-2"]


def test_resume_is_refused_while_the_run_is_alive_naming_its_pid(capsys, tmp_path):
    """Two processes used to write the same files; the summary disagreed with the weights."""
    import time

    (tmp_path / "long.yaml").write_text(LONG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop_cli", "train", str(tmp_path / "long.yaml"),
         "--out", str(tmp_path / "r"), "--quiet"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "r" / "checkpoint.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        code, _, err = run_cli(
            capsys, "train", tmp_path / "long.yaml", "--out", tmp_path / "r", "--resume"
        )
        assert code == 2 and err.count("\n") == 1
        assert f"another backprop run (PID {proc.pid})" in err
    finally:
        proc.kill()
        proc.wait()
    code, _, err = run_cli(  # the process has gone: the lock went with it
        capsys, "train", tmp_path / "long.yaml", "--out", tmp_path / "r", "--resume",
        "--set", "training.epochs=1", "-q",
    )  # fmt: skip
    assert code == 0, err


def test_a_killed_sweeps_workers_die_with_it(tmp_path):
    """A kill -9 of a local-pool sweep used to leave its workers training, then idle, for ever;
    and a resume ran beside them in the same trial directories."""
    import signal
    import time

    (tmp_path / "s.yaml").write_text(
        f"base: {IRIS}\nset: {{training.epochs: 100000}}\ngrid: {{optimizer.lr: [0.01, 0.02]}}\n"
        "output: {dir: runs/s}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop_cli", "sweep", "s.yaml", "--workers", "2", "--quiet"],
        cwd=tmp_path, stderr=subprocess.PIPE,
    )  # fmt: skip
    locks = [tmp_path / "runs" / "s" / t / ".lock" for t in ("trial-000", "trial-001")]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            (p.parent / "checkpoint.npz").exists() for p in locks
        ):
            time.sleep(0.05)
        workers = [int(p.read_text()) for p in locks]  # a run's lock file names its process
        assert proc.pid not in workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        proc.kill()
    for p in locks:  # each trial saved its completed epochs, as on Ctrl-C
        summary = __import__("json").loads((p.parent / "summary.json").read_text())
        assert summary["stop_reason"] == "interrupted" and summary["epochs"] >= 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by a parent that is gone) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def test_a_trial_directory_in_use_is_not_run_beside(capsys, tmp_path):
    """A resume while another process held a trial's directory ran in it all the same."""
    from backprop_cli.store.files import lock_run_dir

    (tmp_path / "s.yaml").write_text(
        f"base: {IRIS}\nset: {{training.epochs: 2}}\ngrid: {{optimizer.lr: [0.01, 0.02]}}\n"
        "output: {dir: runs/s}\n"
    )
    code, _, err = run_cli(capsys, "sweep", tmp_path / "s.yaml", "--workers", "1", "-q")
    assert code == 0, err
    (tmp_path / "runs" / "s" / "trial-001" / "summary.json").unlink()  # as if interrupted
    held = lock_run_dir(tmp_path / "runs" / "s" / "trial-001")
    try:
        code, _, err = run_cli(capsys, "sweep", tmp_path / "runs" / "s", "--resume", "-q")
    finally:
        held.release()
    assert code == 1 and "trial-001" in err
    summary = (tmp_path / "runs" / "s" / "sweep_summary.csv").read_text()
    assert f"another backprop run (PID {os.getpid()})" in summary
