"""BLAS threads chosen by the size of the products (backprop_cli/training/threads.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.errors import ConfigError
from backprop_cli.training import threads
from backprop_cli.training.threads import SMALL_PRODUCT, Threads, choose, limited

from .conftest import CONFIGS, run_cli


def test_small_products_get_one_thread_large_ones_the_blas_own(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert choose([64, 64, 64, 10], 32).count == 1  # 32 x 64 x 64
    assert choose([784, 30, 10], 10).count == 1
    big = choose([784, 512, 512, 10], 128)  # 128 x 784 x 512 = 51 million
    assert big.count is None and "51,380,224" in big.why
    side = int(np.ceil(np.sqrt(SMALL_PRODUCT)))
    assert choose([side, side], 1).count is None  # the threshold itself is large
    assert choose([side - 1, side - 1], 1).count == 1


def test_training_threads_then_the_environment_force_it(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert choose([64, 10], 32) == Threads(3, "$BACKPROP_THREADS")
    assert choose([64, 10], 32, forced=2) == Threads(2, "training.threads")
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(ConfigError, match="BACKPROP_THREADS"):
            choose([64, 10], 32)


@pytest.mark.skipif(not threads.can_limit(), reason="threadpoolctl is not installed")
def test_the_count_holds_inside_and_is_restored_after():
    from threadpoolctl import threadpool_info

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    with limited(Threads(1, "test")) as applied:
        assert applied
        assert set(blas()) == {1}
    assert blas() == before
    with limited(Threads(None, "large")) as applied:
        assert not applied
        assert blas() == before


def test_without_threadpoolctl_the_blas_keeps_its_count(monkeypatch):
    monkeypatch.setattr(threads, "can_limit", lambda: False)
    with limited(Threads(1, "small")) as applied:
        assert not applied


def test_a_run_says_its_threads_and_takes_the_config_key(capsys):
    argv = ["train", CONFIGS / "xor.yaml", "-q", "--set", "training.epochs=2"]
    assert run_cli(capsys, *argv, "--out", "auto")[0] == 0
    auto = json.loads(Path("auto/summary.json").read_text())["blas_threads"]
    assert auto["count"] == 1 and auto["why"].startswith("small products")
    assert auto["set"] == threads.can_limit()
    assert run_cli(capsys, *argv, "--out", "two", "--set", "training.threads=2")[0] == 0
    forced = json.loads(Path("two/summary.json").read_text())["blas_threads"]
    assert forced["count"] == 2 and forced["why"] == "training.threads"
    code, _, err = run_cli(capsys, *argv, "--out", "zero", "--set", "training.threads=0")
    assert code == 2 and "training.threads" in err
