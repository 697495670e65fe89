"""Sweeps: many configs from one base, each an ordinary run, on a process pool or Dask.

A sweep file names a base config, fixed overrides (``set``), a ``grid`` (the cartesian
product of value lists) and ``random`` draws (``samples`` of them, from a ``seed``). Each
trial is the base config plus ``set`` plus its own values, applied with the same
machinery as ``--set`` and validated before anything runs; it trains as an ordinary run
(``train.Run``) in its own directory, ``SWEEP_DIR/trial-NNN``.

``load_sweep`` reads and checks the file; ``SweepRunner.run`` runs the trials and yields
events (dicts), never printing. Trials run in worker processes: a local
``ProcessPoolExecutor`` (spawned, so each worker limits its BLAS threads before NumPy is
imported) or a Dask cluster. Workers do not stream epochs back: each trial writes its run
directory as it trains, and with ``watch=True`` the runner reads the running trials'
metrics.csv every ``POLL_S`` seconds to report their epoch and best metric so far.

Stopping: a first interrupt (``train.STOP.requested``, set by the CLI's signal handler)
writes ``SWEEP_DIR/.stop``; each trial polls for that file and stops at its next batch
through the trainer's own interrupt handling (the completed epochs are saved, summary.json
says ``interrupted``). Queued trials are not started. ``--resume`` continues interrupted
trials from their checkpoints, runs the ones never started, and skips finished ones.

This module imports only the standard library at start-up: a spawned worker imports it to
find ``run_trial`` and must set its thread limits before NumPy is loaded.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import math
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BackpropError, ConfigError, DivergenceError, OutputError

FORMAT = "backprop-sweep"
FORMAT_VERSION = 1
SWEEP_FILE = "sweep.yaml"
SUMMARY_FILE = "sweep_summary.csv"
STOP_FILE = ".stop"
LOCK_FILE = ".lock"
MAX_TRIALS = 10_000
SUMMARY_INTERVAL_S = 1.0  # sweep_summary.csv is rewritten at most this often while trials finish
POLL_S = 0.5  # how often the parent looks at the running trials (and for finished ones)
WATCH_S = 0.2  # how often a running trial looks for the stop file
SWEEP_KEYS = ("base", "set", "grid", "random", "metric", "output")
RANDOM_KEYS = ("samples", "seed", "keys")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
METRICS = tuple(
    f"{split}_{m}" for split in ("val", "train", "test") for m in ("loss", "accuracy", "r2")
)
SUCCEEDED = ("completed", "early_stopping")
FAILED = ("diverged", "failed")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAX_JSON_BYTES = 10_000_000


def metric_mode(metric: str) -> str:
    """min for losses, max for accuracy and R^2."""
    return "min" if metric.endswith("_loss") else "max"


def show_value(value: Any) -> str:
    """A value as one line of flow YAML: what ``--set KEY=...`` reads back to the same value."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].rstrip()
    return text


def _shown(value: Any) -> str:
    text = show_value(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(values: dict[str, Any], limit: int = 120) -> str:
    """``key=value key=value`` for messages, cut at ``limit`` characters."""
    text = " ".join(f"{k}={show_value(v)}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------- the sweep file


@dataclass
class Trial:
    index: int
    name: str
    values: dict[str, Any]  # the varied keys' values
    config: dict  # the resolved config
    task: str  # classification or regression
    epochs: int
    dir: Path = Path()


@dataclass
class Sweep:
    source: str  # the sweep file (or SWEEP_DIR/sweep.yaml on a resume)
    base: str  # the base config's path, absolute
    base_config: dict  # its mapping, as read (data.path made absolute)
    fixed: dict[str, Any]  # set
    grid: dict[str, list]
    random: dict | None  # {samples, seed, keys}
    metric: str
    out: str | None  # output.dir of the file
    trials: list[Trial] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return metric_mode(self.metric)

    @property
    def keys(self) -> list[str]:
        """The varied keys: the grid's, then the random draws'."""
        return [*self.grid, *((self.random or {}).get("keys") or {})]

    def definition(self, sweep_dir: Path) -> dict:
        """What sweep.yaml holds: everything a resume needs, without the base file."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "source": os.path.abspath(self.source),
            "base": self.base,
            "set": self.fixed,
            "grid": self.grid,
            "random": self.random,
            "metric": self.metric,
            "mode": self.mode,
            "output": {"dir": str(sweep_dir)},
            "trials": len(self.trials),
            "base_config": self.base_config,
        }


def _did_you_mean(word: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _key_parts(key: str) -> tuple:
    import re

    return tuple(m.group(0) for m in re.finditer(r"[^.\[\]]+|\[\d+\]", key))


def _check_keys(where: str, mapping: Any, what: str) -> dict:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a mapping of {what} (got {type(mapping).__name__})")
    for k in mapping:
        if not isinstance(k, str) or not k.strip() or "=" in k:
            raise ConfigError(f"{where}: {k!r}: expected a config key such as optimizer.lr")
        parts = _key_parts(k)
        if not parts:
            raise ConfigError(f"{where}: {k!r}: expected a config key such as optimizer.lr")
        if parts[0] == "output" and (len(parts) == 1 or parts[1] == "dir"):
            raise ConfigError(
                f"{where}: {k}: each trial runs in its own directory under the sweep's; "
                "set the sweep's output.dir instead"
            )
    return mapping


def _parse(data: dict, source: str, stored: bool) -> dict:
    """Check the sweep mapping's own keys and values; one ConfigError line for the first problem."""
    allowed = SWEEP_KEYS + (
        ("format", "version", "source", "mode", "trials", "base_config") if stored else ()
    )
    for k in data:
        if k not in allowed:
            hint = _did_you_mean(k, SWEEP_KEYS)
            raise ConfigError(
                f"{source}: {k}: unknown key{hint or '; a sweep file takes ' + ', '.join(SWEEP_KEYS)}"
            )
    if not isinstance(data.get("base"), str) or not data["base"].strip():
        if "base" not in data:
            raise ConfigError(f"{source}: base: required key is missing (the base config file)")
        raise ConfigError(
            f"{source}: base: expected the path of a config file (got {data['base']!r})"
        )
    fixed = _check_keys(f"{source}: set", data.get("set") or {}, "KEY: VALUE overrides")
    grid = _check_keys(f"{source}: grid", data.get("grid") or {}, "KEY: [VALUES]")
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{source}: grid: {k}: expected a non-empty list of values (got {_shown(values)})"
            )
    rnd = data.get("random")
    if rnd is not None:
        if not isinstance(rnd, dict):
            raise ConfigError(f"{source}: random: expected a mapping with samples, seed, keys")
        for k in rnd:
            if k not in RANDOM_KEYS:
                hint = _did_you_mean(k, RANDOM_KEYS)
                raise ConfigError(
                    f"{source}: random.{k}: unknown key{hint or '; random takes samples, seed, keys'}"
                )
        samples = rnd.get("samples")
        if not _int(samples) or not 1 <= samples <= MAX_TRIALS:
            raise ConfigError(
                f"{source}: random.samples: expected an integer from 1 to {MAX_TRIALS} (got {samples!r})"
            )
        seed = rnd.get("seed", 0)
        if not _int(seed) or seed < 0:
            raise ConfigError(f"{source}: random.seed: expected an integer >= 0 (got {seed!r})")
        keys = _check_keys(f"{source}: random.keys", rnd.get("keys"), "KEY: {DISTRIBUTION: ...}")
        if not keys:
            raise ConfigError(f"{source}: random.keys: expected at least one key to draw")
        for k, dist in keys.items():
            _check_distribution(f"{source}: random.keys.{k}", dist)
        rnd = {"samples": samples, "seed": seed, "keys": keys}
    if not grid and rnd is None:
        raise ConfigError(
            f"{source}: nothing to vary; give a grid (KEY: [VALUES]) and/or random draws"
        )
    seen: dict[tuple, str] = {}
    for section, keys in (
        ("set", fixed),
        ("grid", grid),
        ("random.keys", (rnd or {}).get("keys", {})),
    ):
        for k in keys:
            parts = _key_parts(k)
            for other, where in seen.items():
                if parts[: len(other)] == other or other[: len(parts)] == parts:
                    raise ConfigError(
                        f"{source}: {section}: {k}: overlaps {where}; give each key once"
                    )
            seen[parts] = f"{k} in {section}"
    metric = data.get("metric")
    if metric is not None and metric not in METRICS:
        hint = _did_you_mean(metric, METRICS)
        raise ConfigError(
            f"{source}: metric: {metric!r} is not a metric{hint}; expected one of {', '.join(METRICS)}"
        )
    out = data.get("output")
    if out is not None:
        if not isinstance(out, dict) or set(out) - {"dir"}:
            extra = [str(k) for k in out if k != "dir"] if isinstance(out, dict) else None
            raise ConfigError(
                f"{source}: output{'.' + str(extra[0]) if extra else ''}: "
                "expected a mapping with dir: DIRECTORY"
            )
        d = out.get("dir")
        if d is not None and (not isinstance(d, str) or not d.strip() or "\0" in d):
            raise ConfigError(f"{source}: output.dir: expected a directory path (got {d!r})")
    return {"set": fixed, "grid": grid, "random": rnd, "metric": metric}


def _check_distribution(where: str, dist: Any) -> None:
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ConfigError(
            f"{where}: expected one distribution, e.g. {{log_uniform: [1.0e-4, 1.0e-1]}}; "
            f"one of {', '.join(DISTRIBUTIONS)}"
        )
    ((name, args),) = dist.items()
    if name not in DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: unknown distribution {name!r}{_did_you_mean(name, DISTRIBUTIONS)}; "
            f"expected one of {', '.join(DISTRIBUTIONS)}"
        )
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}.choice: expected a non-empty list of values")
        return
    if not isinstance(args, list) or len(args) != 2:
        raise ConfigError(f"{where}.{name}: expected [LOW, HIGH] (got {_shown(args)})")
    lo, hi = args
    if name == "int_uniform":
        if not (_int(lo) and _int(hi)) or lo > hi:
            raise ConfigError(
                f"{where}.int_uniform: expected integers [LOW, HIGH] with LOW <= HIGH (got {_shown(args)})"
            )
        return
    if not (_number(lo) and _number(hi)) or not lo < hi:
        raise ConfigError(
            f"{where}.{name}: expected numbers [LOW, HIGH] with LOW < HIGH (got {_shown(args)})"
        )
    if name == "log_uniform" and lo <= 0:
        raise ConfigError(f"{where}.log_uniform: LOW must be > 0 (got {lo})")


def draw(rnd: dict) -> list[dict[str, Any]]:
    """``samples`` draws of every key, from ``random.Random(seed)``: the same on every machine."""
    rng = random.Random(rnd["seed"])
    out = []
    for _ in range(rnd["samples"]):
        values = {}
        for key, dist in rnd["keys"].items():
            ((name, args),) = dist.items()
            if name == "choice":
                values[key] = copy.deepcopy(args[rng.randrange(len(args))])
            elif name == "int_uniform":
                values[key] = rng.randint(args[0], args[1])
            elif name == "uniform":
                values[key] = float(args[0]) + (float(args[1]) - float(args[0])) * rng.random()
            else:  # log_uniform
                a, b = math.log(args[0]), math.log(args[1])
                values[key] = min(max(math.exp(a + (b - a) * rng.random()), args[0]), args[1])
        out.append(values)
    return out


def _combinations(grid: dict[str, list], rnd: dict | None) -> list[dict[str, Any]]:
    n = math.prod(len(v) for v in grid.values()) * (rnd["samples"] if rnd else 1)
    if n > MAX_TRIALS:
        raise ConfigError(f"the sweep has {n} trials; at most {MAX_TRIALS} are allowed")
    draws = draw(rnd) if rnd else [{}]
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return [{**p, **d} for p in points for d in draws]


def _absolute_data_path(config: dict) -> None:
    """A relative data.path becomes absolute (from the current directory), so a worker that
    runs elsewhere (a Dask worker) reads the same file through a shared file system."""
    d = config.get("data")
    if isinstance(d, dict) and isinstance(d.get("path"), str) and d["path"].strip():
        if "\0" not in d["path"] and not os.path.isabs(d["path"]):
            d["path"] = os.path.abspath(d["path"])


def load_sweep(path: str | Path, data: dict | None = None, check_data: bool = True) -> Sweep:
    """Read a sweep file (or, with ``data``, a stored sweep.yaml's mapping) and build every
    trial's config, validated: any problem is one ConfigError (exit 2) naming the trial and key."""
    from .config import read_config_file

    source = str(path)
    stored = data is not None
    if data is None:
        data = _read_sweep_file(Path(path))
    elif data.get("format") != FORMAT:
        raise ConfigError(f"{source}: not a sweep written by backprop sweep (no format: {FORMAT})")
    elif not _int(data.get("version")) or data["version"] > FORMAT_VERSION:
        raise ConfigError(
            f"{source}: sweep format version {data.get('version')!r}; this backprop reads {FORMAT_VERSION}"
        )
    parsed = _parse(data, source, stored)
    if stored:
        base = str(data["base"])
        base_config = data.get("base_config")
        if not isinstance(base_config, dict):
            raise ConfigError(f"{source}: base_config: expected the base config's mapping")
    else:
        base_path = Path(data["base"])
        if not base_path.is_absolute():
            base_path = Path(path).parent / base_path
        base = os.path.abspath(base_path)
        try:
            base_config = read_config_file(base_path)
        except ConfigError as e:
            raise ConfigError(f"{source}: base: {e}") from None
        _absolute_data_path(base_config)
    grid = parsed["grid"]
    if "data.path" in grid:
        grid["data.path"] = [
            os.path.abspath(v) if isinstance(v, str) and v.strip() and "\0" not in v else v
            for v in grid["data.path"]
        ]
    try:
        combos = _combinations(grid, parsed["random"])
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    out = (data.get("output") or {}).get("dir")
    sweep = Sweep(
        source=source,
        base=base,
        base_config=base_config,
        fixed=parsed["set"],
        grid=grid,
        random=parsed["random"],
        metric=parsed["metric"] or "val_loss",
        out=out,
    )
    width = max(3, len(str(len(combos) - 1)))
    checker = _DataChecker() if check_data else None
    for i, values in enumerate(combos):
        name = f"trial-{i:0{width}d}"
        sweep.trials.append(
            _build_trial(sweep, i, name, values, checker, metric_given=parsed["metric"])
        )
    if parsed["metric"] is None and any(t.config["data"]["validation"] == 0 for t in sweep.trials):
        sweep.metric = "train_loss"  # no validation split to rank by
    if stored and data.get("trials") != len(sweep.trials):
        raise ConfigError(
            f"{source}: trials: the file says {data.get('trials')!r} trial(s) but its grid and "
            f"random draws give {len(sweep.trials)}"
        )
    return sweep


def _read_sweep_file(path: Path) -> dict:
    """The sweep file's mapping: bounded, strict YAML, read as configs are."""
    from .config import read_yaml_file

    if os.path.isdir(path):  # False, not an error, for a name too long or with a NUL byte
        raise ConfigError(f"{path}: is a directory; expected a sweep file (or --resume)")
    data = read_yaml_file(path, "sweep file")
    if not isinstance(data, dict):
        got = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"{path}: a sweep file is a mapping with base, grid and/or random, ... (this one is {got})"
        )
    return data


def _build_trial(
    sweep: Sweep, index: int, name: str, values: dict, checker, metric_given: str | None
) -> Trial:
    from .config import apply_overrides, validate_config

    where = f"{sweep.source}: {name}" + (f" ({describe(values, 80)})" if values else "")
    config = copy.deepcopy(sweep.base_config)
    items = [f"{k}={show_value(v)}" for k, v in {**sweep.fixed, **values}.items()]
    apply_overrides(config, items, source=where + ":")
    _absolute_data_path(config)
    if config.get("output") is None:
        config["output"] = {}
    if isinstance(config["output"], dict):
        config["output"]["dir"] = name  # the trial's directory, made absolute when it runs
    cfg = validate_config(config, where)
    metric = metric_given
    if metric is not None:
        m = metric.split("_", 1)[1]
        wanted = "accuracy" if cfg.task == "classification" else "r2"
        if m not in ("loss", wanted):
            raise ConfigError(
                f"{where}: metric: {metric} needs a {'classification' if m == 'accuracy' else 'regression'} "
                f"loss; this trial's loss is {cfg.loss} ({cfg.task}), so use {metric.split('_')[0]}_{wanted}"
            )
        split = metric.split("_")[0]
        frac = {"val": cfg.data.validation, "test": cfg.data.test}.get(split, 1.0)
        if frac == 0:
            key = "validation" if split == "val" else "test"
            raise ConfigError(
                f"{where}: metric: {metric} needs a {key} split; set data.{key} > 0 or rank by train_loss"
            )
    if checker is not None:
        checker.check(cfg, where)
    return Trial(
        index=index,
        name=name,
        values=values,
        config=cfg.resolved(),
        task=cfg.task,
        epochs=cfg.training.epochs,
    )


class _DataChecker:
    """The checks ``train`` makes against the data (output units against the classes, ...),
    made for every trial before any runs; the prepared data is reused while it fits."""

    def __init__(self):
        self.cache: dict[str, Any] = {}

    def check(self, cfg, where: str) -> None:
        from .training.build import check_against_data, load_prepared

        data = cfg.data.model_dump()
        key = json.dumps([data, cfg.loss, cfg.seed, cfg.model.dtype], sort_keys=True, default=str)
        prep = self.cache.get(key)
        if prep is None:
            prep = load_prepared(cfg, where)
            if len(self.cache) >= 4:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = prep
        check_against_data(cfg, prep, where)


def read_stored(sweep_dir: str | Path) -> Sweep:
    """The sweep a directory was started with, from its sweep.yaml."""
    from .config import read_config_file

    d = Path(sweep_dir)
    f = d / SWEEP_FILE
    if not f.is_file():
        raise ConfigError(f"{d}: no {SWEEP_FILE}; not a sweep directory to resume")
    return load_sweep(f, data=read_config_file(f), check_data=False)


def same_definition(a: Sweep, b: Sweep) -> str | None:
    """The first part two sweeps differ in, or None."""
    for part in ("base_config", "fixed", "grid", "random", "metric"):
        if getattr(a, part) != getattr(b, part):
            return {"fixed": "set"}.get(part, part)
    if [t.values for t in a.trials] != [t.values for t in b.trials]:
        return "trials"
    return None


# ---------------------------------------------------------------------------- a trial, in a worker


def limit_threads(n: int) -> None:
    """Cap BLAS/OpenMP threads at ``n`` (or lower, when the environment already says so).
    Effective only before NumPy is imported in this process."""
    for var in THREAD_VARS:
        try:
            current = int(os.environ.get(var, ""))
        except ValueError:
            current = 0
        os.environ[var] = str(min(n, current) if current > 0 else n)


def init_worker(threads: int) -> None:
    """The local pool's initializer: thread limits before NumPy loads; Ctrl-C is the parent's."""
    import signal

    limit_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _StopWatch:
    """While a trial runs, look for the sweep's stop file; once it is there, ``seen`` is True and
    the trial's trainer (which asks it at every batch) stops. Per trial, so that the trials of
    a Dask worker with several threads stop each on its own."""

    def __init__(self, stop_file: str):
        self.stop_file = stop_file
        self.seen = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._done.wait(WATCH_S):
            if os.path.exists(self.stop_file):
                self.seen = True
                return


def _prepare_fresh(d: Path) -> None:
    """A trial directory to start in from scratch: files of a start that never saved an epoch
    (no checkpoint) are removed; anything else there is refused, never overwritten."""
    from .store.rundir import RUN_FILES

    if not d.exists():
        return
    for p in d.iterdir():
        if p.name in RUN_FILES or (p.name.startswith(".") and ".tmp-" in p.name):
            p.unlink()
    if any(d.iterdir()):
        raise OutputError(
            f"{d}: holds files that are not a run's; move them away, then resume the sweep"
        )


def run_trial(task: dict) -> dict:
    """Train one trial (in a worker process or a Dask worker); never raises, returns a result.

    ``task``: trial, config (resolved), source, dir (absolute), resume (continue from the
    checkpoint), stop_file, threads.
    """
    if "numpy" not in sys.modules:
        limit_threads(int(task.get("threads") or 1))
    t0 = time.perf_counter()
    result: dict = {"trial": task["trial"], "status": "failed", "error": "", "rows": []}
    if os.path.exists(task["stop_file"]):
        return result | {"status": "pending"}  # stopped before it started: it never ran
    run = None
    with _StopWatch(task["stop_file"]) as watch:
        try:
            from .config import validate_config
            from .training import Run

            config = copy.deepcopy(task["config"])
            config["output"]["dir"] = task["dir"]
            cfg = validate_config(config, task["source"])
            d = Path(task["dir"])
            if not task["resume"]:
                _prepare_fresh(d)
            run = Run(cfg, task["source"], out=str(d), resume=task["resume"])
            if watch.seen:
                return result | {"status": "pending" if not task["resume"] else "interrupted"}
            run.start()
            for _ in run.epochs(should_stop=lambda: watch.seen):
                pass
            result["status"] = run.stop_reason
        except KeyboardInterrupt:  # the stop file, through the trainer's should_stop
            result["status"] = "interrupted"
        except DivergenceError as e:
            result |= {"status": "diverged", "error": str(e)}
        except BackpropError as e:
            result |= {"status": "failed", "error": str(e)}
        except Exception as e:  # a bug: say what, in one line
            result |= {"status": "failed", "error": f"internal error ({type(e).__name__}: {e})"}
    if run is not None:
        result["rows"] = [_main_row(r) for r in run.rows]
        if run.summary_data is not None:
            result["summary"] = run.summary_data
    result["wall_s"] = time.perf_counter() - t0
    return result


_MAIN = ("epoch", "train_loss", "train_accuracy", "train_r2", "val_loss", "val_accuracy", "val_r2")


def _main_row(r: dict) -> dict:
    return {k: r[k] for k in (*_MAIN, "time_s") if k in r}


# ---------------------------------------------------------------------------- results


def _float(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def result_from_dir(d: Path) -> dict | None:
    """A finished trial's result from its files: summary.json and metrics.csv; None when
    there is no readable summary."""
    try:
        with open(d / "summary.json", "rb") as f:
            summary = json.loads(f.read(MAX_JSON_BYTES))
        if not isinstance(summary, dict) or not isinstance(summary.get("stop_reason"), str):
            return None
    except (OSError, ValueError):
        return None
    rows = []
    try:
        with open(d / "metrics.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                row = {k: _float(v) for k, v in r.items() if k in (*_MAIN, "time_s")}
                if math.isfinite(row.get("epoch", math.nan)):
                    row["epoch"] = int(row["epoch"])
                    rows.append(row)
    except (OSError, UnicodeError, csv.Error):
        pass
    rows = rows[: summary.get("epochs") or len(rows)]
    return {
        "trial": d.name,
        "status": summary["stop_reason"],
        "error": "",
        "rows": rows,
        "summary": summary,
    }


def _best_index(values: list[float], mode: str) -> int | None:
    best = None
    for i, v in enumerate(values):
        if math.isfinite(v) and (
            best is None or (v < values[best] if mode == "min" else v > values[best])
        ):
            best = i
    return best


@dataclass
class TrialState:
    """What the parent knows of a trial: its plan, its state, its result and its CSV row."""

    trial: Trial
    state: str = "pending"  # pending, running, or a final status
    resume: bool = False
    skipped: bool = False  # finished before this invocation
    result: dict | None = None
    epoch: int = 0  # progress while running (from metrics.csv)
    best: float = math.nan
    started: float = 0.0
    _seen: tuple = ()
    _row: dict | None = None
    _row_key: tuple = ()

    @property
    def name(self) -> str:
        return self.trial.name

    @property
    def finished(self) -> bool:
        return self.state in SUCCEEDED or self.state in FAILED


def trial_row(ts: TrialState, metric: str) -> dict:
    """The trial's sweep_summary.csv row (also its --json line): the varied keys, status,
    epochs, the metrics of its best epoch by the sweep's metric, the test metrics, time."""
    t, res = ts.trial, ts.result or {}
    m = "accuracy" if t.task == "classification" else "r2"
    rows = res.get("rows") or []
    summary = res.get("summary") or {}
    row: dict[str, Any] = {"trial": t.name, **t.values, "status": ts.state, "epochs": len(rows)}
    best_epoch = None
    if rows:
        if metric.startswith("test_"):
            best_epoch = (summary.get("best") or {}).get("epoch")
        else:
            i = _best_index([_float(r.get(metric)) for r in rows], metric_mode(metric))
            best_epoch = rows[i]["epoch"] if i is not None else None
    at = next((r for r in rows if r.get("epoch") == best_epoch), {})
    row["best_epoch"] = best_epoch
    for k in ("train_loss", f"train_{m}", "val_loss", f"val_{m}"):
        row[k] = _finite(at.get(k))
    test = summary.get("test") or {}
    row["test_loss"], row[f"test_{m}"] = _finite(test.get("loss")), _finite(test.get(m))
    times = [_float(r.get("time_s")) for r in rows]
    row["time_s"] = sum(t for t in times if math.isfinite(t)) if rows else None
    row["dir"] = str(t.dir)
    row["error"] = res.get("error") or ""
    row["score"] = _score(row, metric)
    return row


def _finite(v) -> float | None:
    f = _float(v)
    return f if math.isfinite(f) else None


def _score(row: dict, metric: str) -> float:
    v = _float(row.get(metric))
    return v if math.isfinite(v) else math.nan


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict, bool)):
        return show_value(v)
    return str(v)


def summary_csv(rows: list[dict], keys: list[str]) -> str:
    columns = ["trial", *keys, "status", "epochs", "best_epoch"]
    for k in ("train_loss", "train_accuracy", "train_r2", "val_loss", "val_accuracy", "val_r2",
              "test_loss", "test_accuracy", "test_r2"):  # fmt: skip
        if any(k in r for r in rows):
            columns.append(k)
    columns += ["time_s", "dir", "error"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


# ---------------------------------------------------------------------------- backends


def usable_cores() -> int:
    for get in (getattr(os, "process_cpu_count", None), lambda: len(os.sched_getaffinity(0))):
        try:
            n = get() if get else None
        except (AttributeError, OSError):
            n = None
        if n:
            return n
    return os.cpu_count() or 1


class LocalBackend:
    """A spawned ProcessPoolExecutor; each worker caps its BLAS threads so that
    workers x threads <= cores."""

    kind = "local"

    def __init__(self, workers: int):
        self.workers = workers
        self.threads = max(1, usable_cores() // workers)
        self.pool = None

    def describe(self) -> str:
        return f"a local pool of {self.workers} worker(s), {self.threads} thread(s) each"

    def _pool(self):
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(self.threads,),
            )
        return self.pool

    def capacity(self) -> int:
        return self.workers

    def submit(self, task: dict):
        return self._pool().submit(run_trial, task)

    def wait(self, futures: list, timeout: float) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        if not futures:
            time.sleep(timeout)
            return []
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return [f for f in futures if f in done]

    def result(self, future) -> dict:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            if self.pool is not None and getattr(self.pool, "_broken", False):
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None  # a new pool for the trials still to run
            return {
                "status": "failed",
                "error": "its worker process died (killed, or out of memory?)",
            }
        except Exception as e:
            return {"status": "failed", "error": f"the worker failed ({type(e).__name__}: {e})"}

    def close(self, kill: bool = False) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if kill:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                try:
                    p.terminate()
                except (OSError, AttributeError):
                    pass
            for p in procs:
                p.join(timeout=5)
        else:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskBackend:
    """A Dask cluster: an existing scheduler (``address``) or a LocalCluster of ``n_workers``
    single-threaded worker processes on 127.0.0.1."""

    kind = "dask"

    def __init__(self, address: str | None = None, n_workers: int | None = None):
        self.address, self.n_workers = address, n_workers
        self.client = self.cluster = None
        self._cap, self._cap_at = 1, -math.inf

    def open(self) -> None:
        import logging
        import signal

        try:
            from distributed import Client, LocalCluster
        except ImportError:
            opt = "--scheduler" if self.address else "--dask-local"
            raise ConfigError(
                f"{opt}: Dask is not installed; pip install 'backprop-cli[sweep]' "
                "(dask[distributed]), or run on the local pool"
            ) from None
        if self.address:
            try:
                self.client = Client(self.address, timeout=10)
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise ConfigError(
                    f"--scheduler {self.address}: cannot connect ({' '.join(str(e).split())[:200]})"
                ) from None
            return
        # Worker processes are spawned with Ctrl-C ignored (it is inherited across exec): the
        # sweep stops them through its stop file, after they save.
        old = signal.getsignal(signal.SIGINT)
        main = threading.current_thread() is threading.main_thread()
        if main:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        finally:
            if main:
                signal.signal(signal.SIGINT, old)

    def describe(self) -> str:
        if self.address:
            n = sum(self._nthreads().values())
            return f"the Dask cluster at {self.address} ({n} worker thread(s) now)"
        return f"a Dask LocalCluster of {self.n_workers} worker(s) on 127.0.0.1"

    def _nthreads(self) -> dict:
        try:
            return self.client.nthreads()
        except Exception:
            return {}

    def capacity(self) -> int:
        now = time.monotonic()
        if now - self._cap_at > 2.0:
            self._cap, self._cap_at = max(1, sum(self._nthreads().values())), now
        return self._cap

    @property
    def threads(self) -> int:
        return 1

    def submit(self, task: dict):
        return self.client.submit(
            run_trial, task, pure=False, key=f"backprop-{task['trial']}-{os.urandom(4).hex()}"
        )

    def wait(self, futures: list, timeout: float) -> list:
        from distributed import wait

        if not futures:
            time.sleep(timeout)
            return []
        try:
            wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except Exception:  # the timeout (dask's TimeoutError)
            pass
        return [f for f in futures if f.done()]

    def result(self, future) -> dict:
        try:
            return future.result()
        except Exception as e:
            return {
                "status": "failed",
                "error": f"the Dask task failed ({type(e).__name__}: {' '.join(str(e).split())[:300]})",
            }

    def close(self, kill: bool = False) -> None:
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=10)
            except Exception:
                pass


# ---------------------------------------------------------------------------- the runner


class DirLock:
    """One sweep at a time in a directory: an exclusive lock on SWEEP_DIR/.lock, held while
    the sweep runs and released by the system if the process dies (where fcntl exists)."""

    def __init__(self, sweep_dir: Path):
        self.path = Path(sweep_dir) / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(
                f"{self.path}: cannot create the sweep's lock file ({e.strerror or e})"
            ) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise OutputError(
                f"{self.path.parent}: another backprop sweep is running in this directory; "
                "wait for it, or stop it (Ctrl-C, or create the file .stop in the directory)"
            ) from None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
        return False


class SweepRunner:
    """Runs a sweep's trials on a backend; ``run()`` yields events, the CLI renders them.

    Events: ``start`` (sweep_dir, trials, to_run, skipped, backend), ``progress`` (with
    ``watch``, every POLL_S: every trial's state, epoch and best metric), ``trial`` (a trial
    finished: its row), ``stopping`` (an interrupt: the running trials are saving; or
    ``fail_fast``: the first failure), ``summary`` (the end).
    """

    def __init__(
        self,
        sweep: Sweep,
        sweep_dir: Path,
        backend,
        *,
        resume: bool = False,
        fail_fast: bool = False,
    ):
        self.sweep, self.backend = sweep, backend
        self.resume, self.fail_fast = resume, fail_fast
        self.states = [TrialState(t) for t in sweep.trials]
        self.use_dir(Path(sweep_dir))
        self.inflight: dict[Any, TrialState] = {}
        self.interrupted = False
        self.stopping = False
        self.t0 = time.perf_counter()
        self._written_at, self._dirty = -math.inf, False

    def use_dir(self, sweep_dir: Path) -> None:
        """The sweep's directory (a new sweep's is known once it is created)."""
        self.dir = Path(sweep_dir)
        self.stop_file = os.path.abspath(self.dir / STOP_FILE)
        for ts in self.states:
            ts.trial.dir = self.dir / ts.name

    # -- the plan

    def plan(self) -> None:
        """Decide what each trial needs: skip (finished earlier), resume, or a fresh start."""
        if not self.resume:
            return
        errors = self._earlier_errors()
        for ts in self.states:
            d = ts.trial.dir
            if not d.exists():
                continue
            res = result_from_dir(d)
            status = res["status"] if res else None
            if status in SUCCEEDED or status == "diverged":  # a divergence would come again
                ts.state, ts.skipped, ts.result = status, True, res
                if status == "diverged":
                    res["error"] = errors.get(ts.name) or "training diverged (see its summary.json)"
            elif (d / "checkpoint.npz").is_file() and (d / "config.yaml").is_file():
                ts.resume = True

    def _earlier_errors(self) -> dict[str, str]:
        """The error column of the sweep_summary.csv a resume starts from (a diverged trial's
        message is not in its summary.json)."""
        try:
            with open(self.dir / SUMMARY_FILE, newline="", encoding="utf-8") as f:
                return {r.get("trial", ""): r.get("error") or "" for r in csv.DictReader(f)}
        except (OSError, UnicodeError, csv.Error):
            return {}

    @property
    def to_run(self) -> list[TrialState]:
        return [ts for ts in self.states if not ts.skipped]

    def row(self, ts: TrialState) -> dict:
        """The trial's row, computed again only when its state or result changes."""
        key = (ts.state, id(ts.result))
        if ts._row is None or ts._row_key != key:
            ts._row, ts._row_key = trial_row(ts, self.sweep.metric), key
        return ts._row

    def rows(self) -> list[dict]:
        return [self.row(ts) for ts in self.states]

    def write_summary(self, force: bool = True) -> None:
        """sweep_summary.csv, atomically; at most once a second unless ``force``d, so that a
        sweep of many short trials does not spend its time rewriting it."""
        from .store.files import write_text

        now = time.monotonic()
        if not force and now - self._written_at < SUMMARY_INTERVAL_S:
            self._dirty = True
            return
        write_text(self.dir / SUMMARY_FILE, summary_csv(self.rows(), self.sweep.keys))
        self._written_at, self._dirty = now, False

    def write_definition(self) -> None:
        import yaml

        from .store.files import write_text

        text = (
            "# The sweep as started by backprop sweep; `backprop sweep DIR --resume` reads it.\n"
            + yaml.safe_dump(self.sweep.definition(self.dir), sort_keys=False)
        )
        write_text(self.dir / SWEEP_FILE, text)

    def _task(self, ts: TrialState) -> dict:
        return {
            "trial": ts.name,
            "config": ts.trial.config,
            "source": f"{self.sweep.source}: {ts.name}",
            "dir": os.path.abspath(ts.trial.dir),
            "resume": ts.resume,
            "stop_file": self.stop_file,
            "threads": self.backend.threads,
        }

    # -- running

    def run(self, watch: bool = False) -> Iterator[dict]:
        from .training import STOP

        self._remove_stop_file()
        queue = deque(ts for ts in self.states if not ts.skipped)
        yield {
            "event": "start",
            "sweep_dir": str(self.dir),
            "trials": len(self.states),
            "to_run": len(queue),
            "skipped": len(self.states) - len(queue),
            "backend": self.backend.describe(),
            "metric": self.sweep.metric,
            "resume": self.resume,
        }
        self.write_summary()
        STOP.active, STOP.requested = True, False  # a first Ctrl-C asks; a second one raises
        last_poll = -math.inf
        try:
            while queue or self.inflight:
                asked = STOP.requested or os.path.exists(self.stop_file)  # Ctrl-C, or touch .stop
                if asked and not self.interrupted:
                    self.interrupted = self.stopping = True
                    self._write_stop_file()
                    queue.clear()
                    yield {"event": "stopping", "reason": "interrupted", "running": self._running()}
                while queue and not self.stopping and len(self.inflight) < self.backend.capacity():
                    ts = queue.popleft()
                    ts.state, ts.started = "running", time.time()
                    self.inflight[self.backend.submit(self._task(ts))] = ts
                for fut in self.backend.wait(list(self.inflight), POLL_S):
                    ts = self.inflight[fut]
                    self._record(ts, self.backend.result(fut))
                    del self.inflight[fut]
                    if ts.state == "pending":  # stopped before it began: it never ran
                        continue
                    yield {"event": "trial", **self.row(ts)}
                    if ts.state in FAILED and self.fail_fast and not self.stopping:
                        self.stopping = True
                        for q in queue:
                            q.state = "cancelled"
                        queue.clear()
                        self.write_summary()
                        yield {
                            "event": "stopping",
                            "reason": "fail_fast",
                            "trial": ts.name,
                            "running": self._running(),
                        }
                if self._dirty:
                    self.write_summary(force=False)
                if watch and time.monotonic() - last_poll >= POLL_S:
                    last_poll = time.monotonic()
                    self._poll()
                    yield {"event": "progress", "states": self.progress()}
        finally:
            STOP.active = False
        # Ctrl-C while the last trials were finishing: nothing is left to resume.
        self.interrupted = self.interrupted and not all(ts.finished for ts in self.states)
        self.write_summary()
        self._remove_stop_file()
        self.backend.close()
        yield self.summary()

    def _running(self) -> list[str]:
        return [ts.name for ts in self.inflight.values()]

    def _record(self, ts: TrialState, res: dict) -> None:
        if ts.finished and ts.result is not None:
            return
        status = res.get("status") or "failed"
        if status == "pending":  # asked to stop before it started
            ts.state = "pending"
            return
        if status not in (*SUCCEEDED, *FAILED, "interrupted"):
            status = "failed"
        ts.state, ts.result = status, res
        self.write_summary(force=False)

    def kill(self) -> None:
        """A second interrupt: stop the workers now; the running trials keep what they saved."""
        self._write_stop_file()
        for ts in self.inflight.values():
            if not ts.finished:
                ts.state = "interrupted"
                res = result_from_dir(ts.trial.dir)  # what it saved, if it wrote a summary
                if res is not None and res["status"] == "interrupted":
                    ts.result = res
        self.inflight.clear()
        self.interrupted = any(not ts.finished for ts in self.states)
        try:
            self.backend.close(kill=True)
        finally:
            try:
                self.write_summary()
            except OutputError:
                pass
            self._remove_stop_file()

    def _write_stop_file(self) -> None:
        try:
            with open(self.stop_file, "w") as f:
                f.write("stop\n")
        except OSError:
            pass

    def _remove_stop_file(self) -> None:
        try:
            os.unlink(self.stop_file)
        except OSError:
            pass

    def _poll(self) -> None:
        """Each running trial's epoch and best metric so far, from its metrics.csv."""
        metric = self.sweep.metric
        column = metric if not metric.startswith("test_") else "val_loss"
        for ts in self.inflight.values():
            p = ts.trial.dir / "metrics.csv"
            try:
                st = p.stat()
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) == ts._seen:
                continue
            ts._seen = (st.st_mtime_ns, st.st_size)
            try:
                with open(p, newline="", encoding="utf-8") as f:
                    rows = list(csv.DictReader(f))
            except (OSError, UnicodeError, csv.Error):
                continue
            ts.epoch = len(rows)
            values = [_float(r.get(column)) for r in rows]
            i = _best_index(values, metric_mode(column))
            ts.best = values[i] if i is not None else math.nan

    def progress(self) -> list[dict]:
        out = []
        for ts in self.states:
            row = {
                "trial": ts.name,
                "values": ts.trial.values,
                "state": ts.state,
                "epochs": ts.trial.epochs,
            }
            if ts.state == "running":
                row |= {"epoch": ts.epoch, "best": ts.best, "elapsed_s": time.time() - ts.started}
            elif ts.result is not None:
                r = self.row(ts)
                row |= {"epoch": r["epochs"], "best": r["score"], "time_s": r["time_s"]}
            out.append(row)
        return out

    def best(self) -> dict | None:
        rows = [r for r in self.rows() if r["status"] in SUCCEEDED]
        i = _best_index([r["score"] for r in rows], self.sweep.mode)
        return rows[i] if i is not None else None

    def summary(self) -> dict:
        rows = self.rows()
        count = {
            s: sum(r["status"] == s for r in rows)
            for s in (*SUCCEEDED, *FAILED, "interrupted", "cancelled", "pending")
        }
        return {
            "event": "summary",
            "sweep_dir": str(self.dir),
            "summary_csv": str(self.dir / SUMMARY_FILE),
            "trials": len(rows),
            "ran": sum(1 for ts in self.states if not ts.skipped and ts.result is not None),
            "skipped": sum(ts.skipped for ts in self.states),
            "succeeded": count["completed"] + count["early_stopping"],
            "failed": count["diverged"] + count["failed"],
            "interrupted": count["interrupted"],
            "cancelled": count["cancelled"],
            "pending": count["pending"],
            "stopped": self.interrupted,
            "metric": self.sweep.metric,
            "mode": self.sweep.mode,
            "best": self.best(),
            "failures": [
                {"trial": r["trial"], "status": r["status"], "error": r["error"]}
                for r in rows
                if r["status"] in FAILED
            ],
            "time_s": time.perf_counter() - self.t0,
        }
