import os
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
