"""The package as users get it: a wheel that builds, installs in a fresh virtual environment
(as pipx would) and runs, with its licence, version and built-in datasets."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backprop_cli.version import __version__

from .conftest import CONFIGS, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"the build backend could not be installed here: {done.stderr[-300:]}")
    (path,) = out.glob("*.whl")
    return path


def test_the_wheel_carries_licence_version_and_datasets(wheel):
    assert wheel.name == f"backprop_cli-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"backprop_cli-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}" in meta and "License-Expression: MIT" in meta
    assert f"backprop_cli-{__version__}.dist-info/licenses/LICENSE" in names
    assert "backprop_cli/py.typed" in names
    for csv in ("iris", "digits", "wine", "breast_cancer", "penguins"):
        assert f"backprop_cli/datasets/{csv}.csv" in names
    for source in ("_kernels.c", "_fused.c", "_fused.h"):  # compiled on first use
        assert f"backprop_cli/nn/{source}" in names


def test_a_fresh_environment_installs_and_runs_it(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if pip.returncode != 0:
        pytest.skip(f"the dependencies could not be installed here: {pip.stderr[-300:]}")
    backprop = str(venv / "bin" / "backprop")
    version = subprocess.run([backprop, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"backprop {__version__}"
    # the built-in datasets come with the package, whatever the current directory
    check = subprocess.run(
        [backprop, "validate", str(CONFIGS / "penguins.yaml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "ok: " in check.stdout
