import json
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own empty directory, so runs/ never lands in the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    yield


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (text) to tmp_path/NAME and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


os.environ.setdefault("PYTHONHASHSEED", "0")
# The compiled optimizer kernels (nn/fast.py) are built into a cache of this test session's,
# not the user's; the CLI's subprocesses inherit it.
os.environ.setdefault("BACKPROP_CACHE_DIR", tempfile.mkdtemp(prefix="backprop-test-cache-"))


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of the real entry point on ``args``."""
    from backprop_cli.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_line_error(err, *words):
    """stderr is one `error:` line, without a traceback, holding every one of ``words``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def make_optimizer(name, params, grads, **hyper):
    """nn's optimizer with the config's defaults (torch.optim's) for what ``hyper`` leaves out,
    as a config would build it; an unknown name goes through as it is, to be refused."""
    from backprop_cli.config import OPTIMIZER_MODELS, optimizer_defaults
    from backprop_cli.nn.optimizers import make_optimizer as make

    defaults = optimizer_defaults(name) if name in OPTIMIZER_MODELS else {}
    return make(name, params, grads, **(defaults | hyper))


def Schedule(base_lr, name="constant", **params):  # noqa: N802 (stands in for the class)
    """nn's Schedule with the config's defaults for the schedule's own parameters."""
    from backprop_cli.config import schedule_defaults
    from backprop_cli.config.models import WarmupConfig
    from backprop_cli.nn.schedules import Schedule as Made

    own = schedule_defaults(name) if name != "constant" else {}
    if "warmup_iters" in params:
        params.setdefault("warmup_start_factor", WarmupConfig().start_factor)
    return Made(base_lr, name, **(own | params))
