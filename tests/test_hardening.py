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
