"""A sweep's trials, planned before anything runs.

``load_sweep`` reads a sweep file and its base config; ``read_stored`` reads the copy a sweep
keeps in its directory (sweep.yaml, the base config included). Either way every trial is
built here: the grid's combinations, each with every random draw, applied to the base config
(``set`` first, then the trial's own values) with ``config.set_key``, validated as a config
and checked against the data, so that a bad trial is one ConfigError line naming it, before
a single directory is created. A search (``search:``) asks its trials of Optuna as it runs:
here its defaults are filled in and every value its space can give is checked instead, and
``search_trial`` builds each trial when it is asked.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, read_config_file, set_key, validate_config
from ..errors import ConfigError
from ..training.build import check_against_data, load_prepared
from .spec import (
    FORMAT,
    FORMAT_VERSION,
    MAX_TRIALS,
    SWEEP_FILE,
    SweepFile,
    describe,
    metric_mode,
    parse_sweep,
    read_sweep_file,
)


@dataclass
class Trial:
    """One trial: its values and the config they make, and (once known) its directory."""

    index: int
    name: str
    values: dict[str, Any]  # the varied keys' values
    config: dict  # the resolved config
    task: str  # classification or regression
    epochs: int
    dir: Path = Path()


@dataclass
class Sweep:
    """A sweep as planned: what its file says, resolved, and every trial."""

    source: str  # the sweep file (or SWEEP_DIR/sweep.yaml on a resume)
    base: str  # the base config's path, absolute
    base_config: dict  # its mapping, as read (data.path made absolute)
    fixed: dict[str, Any]  # set
    grid: dict[str, list]
    random: dict | None  # {samples, seed, keys: {KEY: {DISTRIBUTION: ARGS}}}
    metric: str
    out: str | None  # output.dir of the file
    trials: list[Trial] = field(default_factory=list)  # a search's are asked as it runs
    search: dict | None = None  # sampler, trials, direction, metric, pruner, seed (resolved)
    task: str = ""  # classification or regression (a search's, from its base)

    @property
    def mode(self) -> str:
        return metric_mode(self.metric)

    @property
    def keys(self) -> list[str]:
        """The varied keys: the grid's, then the random draws'."""
        return [*self.grid, *((self.random or {}).get("keys") or {})]

    def definition(self, sweep_dir: Path) -> dict:
        """What sweep.yaml holds: everything a resume needs, without the base file."""
        search = {"search": self.search} if self.search else {}
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION if self.search else 1,  # a grid's stays readable by 0.1
            "source": os.path.abspath(self.source),
            "base": self.base,
            "set": self.fixed,
            "grid": self.grid,
            "random": self.random,
            **search,
            "metric": self.metric,
            "mode": self.mode,
            "output": {"dir": str(sweep_dir)},
            "trials": self.search["trials"] if self.search else len(self.trials),
            "base_config": self.base_config,
        }


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file and build every trial's config, validated and checked against the
    data: any problem is one ConfigError (exit 2) naming the trial and the key."""
    source = str(path)
    spec = parse_sweep(read_sweep_file(Path(path)), source)
    base_path = Path(spec.base)
    if not base_path.is_absolute():
        base_path = Path(path).parent / base_path
    try:
        base_config = read_config_file(base_path)
    except ConfigError as e:
        raise ConfigError(f"{source}: base: {e}") from None
    _absolute_data_path(base_config)
    return _plan(spec, source, os.path.abspath(base_path), base_config, check_data=True)


def read_stored(sweep_dir: str | Path) -> Sweep:
    """The sweep a directory was started with, from its sweep.yaml."""
    f = Path(sweep_dir) / SWEEP_FILE
    if not f.is_file():
        raise ConfigError(f"{sweep_dir}: no {SWEEP_FILE}; not a sweep directory to resume")
    source = str(f)
    spec = parse_sweep(read_config_file(f), source, stored=True)
    sweep = _plan(spec, source, spec.base, spec.base_config, check_data=False)
    if sweep.search is None and spec.trials != len(sweep.trials):
        raise ConfigError(
            f"{source}: trials: the file says {spec.trials!r} trial(s) but its grid and "
            f"random draws give {len(sweep.trials)}"
        )
    return sweep


def same_definition(a: Sweep, b: Sweep) -> str | None:
    """The first part two sweeps differ in, or None; a search may be given more trials."""
    for part in ("base_config", "fixed", "grid", "random", "search", "metric"):
        x, y = getattr(a, part), getattr(b, part)
        if part == "search" and x and y:
            changed = [k for k in x if k != "trials" and x[k] != y.get(k)]
            x, y = changed, []
            part = f"search.{changed[0]}" if changed else part
        if x != y:
            return {"fixed": "set"}.get(part, part)
    if [t.values for t in a.trials] != [t.values for t in b.trials]:
        return "trials"
    return None


def _plan(spec: SweepFile, source: str, base: str, base_config: dict, check_data: bool) -> Sweep:
    """The sweep of a parsed file: every trial built and validated."""
    grid = dict(spec.grid)
    if "data.path" in grid:
        grid["data.path"] = [
            os.path.abspath(v) if isinstance(v, str) and v.strip() and "\0" not in v else v
            for v in grid["data.path"]
        ]
    n = math.prod(len(v) for v in grid.values()) * ((spec.random and spec.random.samples) or 1)
    if n > MAX_TRIALS and spec.search is None:
        raise ConfigError(f"{source}: the sweep has {n} trials; at most {MAX_TRIALS} are allowed")
    sweep = Sweep(
        source=source,
        base=base,
        base_config=base_config,
        fixed=spec.set,
        grid=grid,
        random=_random(spec),
        metric=spec.metric or "val_loss",
        out=spec.output.dir if spec.output is not None else None,
    )
    if spec.search is not None:
        _plan_search(sweep, spec, _DataChecker() if check_data else None)
        return sweep
    draws = spec.random.draw() if spec.random is not None else [{}]
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    combos = [{**p, **d} for p in points for d in draws]
    width = max(3, len(str(len(combos) - 1)))
    checker = _DataChecker() if check_data else None
    for i, values in enumerate(combos):
        name = f"trial-{i:0{width}d}"
        sweep.trials.append(_build_trial(sweep, i, name, values, spec.metric, checker))
    if spec.metric is None and any(t.config["data"]["validation"] == 0 for t in sweep.trials):
        sweep.metric = "train_loss"  # no validation split to rank by
    return sweep


def _random(spec: SweepFile) -> dict | None:
    """random as sweep.yaml keeps it: a search's is only its keys (the space)."""
    if spec.random is None:
        return None
    return spec.random.model_dump(include={"keys"} if spec.search else None)


def search_trial(sweep: Sweep, number: int, values: dict) -> Trial:
    """A search's trial ``number`` (Optuna's), with the values asked of the sampler."""
    return _build_trial(sweep, number, f"trial-{number:03d}", values, sweep.metric, None)


def _plan_search(sweep: Sweep, spec: SweepFile, checker: _DataChecker | None) -> None:
    """A search's defaults filled in, and its space checked: every grid value and choice and
    both ends of every range (as the sampler gives them: floats, or integers), each with the
    other keys at their first, is a config built, validated and checked against the data."""
    search, source = spec.search, sweep.source
    if search.metric and spec.metric and search.metric != spec.metric:
        raise ConfigError(
            f"{source}: search.metric: {search.metric} differs from metric: {spec.metric}; give one"
        )
    explicit = search.metric or spec.metric
    want = "minimize" if metric_mode(explicit or "val_loss") == "min" else "maximize"
    if search.direction not in (None, want):
        raise ConfigError(
            f"{source}: search.direction: {search.direction} contradicts the metric "
            f"{explicit or 'val_loss'}, which is {want[:-1]}ed"
        )
    grid_size = math.prod(len(v) for v in sweep.grid.values())
    if search.sampler == "grid" and (search.trials or 0) > grid_size:
        raise ConfigError(
            f"{source}: search.trials: {search.trials} is more than the grid's {grid_size} "
            "combination(s), which sampler grid tries once each"
        )
    if search.trials is None and search.sampler != "grid":
        raise ConfigError(f"{source}: search.trials: required key is missing (how many trials)")
    options: dict[str, list] = {k: list(v) for k, v in sweep.grid.items()}
    for k, d in (spec.random.keys if spec.random else {}).items():
        args = getattr(d, d.name)
        options[k] = [float(a) for a in args] if d.name in ("uniform", "log_uniform") else args
    first = {k: v[0] for k, v in options.items()}
    probes = [first] + [{**first, k: v} for k, vs in options.items() for v in vs[1:]]
    built = [_build_trial(sweep, 0, "search", p, explicit, checker) for p in probes]
    no_val = any(t.config["data"]["validation"] == 0 for t in built)
    sweep.metric = explicit or ("train_loss" if no_val else "val_loss")
    sweep.task = built[0].task
    sweep.search = search.model_dump() | {
        "trials": search.trials or grid_size,
        "direction": want,
        "metric": sweep.metric,
    }


def _absolute_data_path(config: dict) -> None:
    """A relative data.path becomes absolute (from the current directory), so a worker that
    runs elsewhere (a Dask worker) reads the same file through a shared file system."""
    d = config.get("data")
    if isinstance(d, dict) and isinstance(d.get("path"), str) and d["path"].strip():
        if "\0" not in d["path"] and not os.path.isabs(d["path"]):
            d["path"] = os.path.abspath(d["path"])


def _build_trial(
    sweep: Sweep,
    index: int,
    name: str,
    values: dict,
    metric: str | None,
    checker: _DataChecker | None,
) -> Trial:
    """The base config with ``set`` and the trial's values, validated (and checked against the
    data, with a ``checker``)."""
    where = f"{sweep.source}: {name}" + (f" ({describe(values, 80)})" if values else "")
    config = copy.deepcopy(sweep.base_config)
    for key, value in {**sweep.fixed, **values}.items():
        set_key(config, key, copy.deepcopy(value), source=where + ":")
    _absolute_data_path(config)
    if config.get("output") is None:
        config["output"] = {}
    if isinstance(config["output"], dict):
        config["output"]["dir"] = name  # the trial's directory, made absolute when it runs
    cfg = validate_config(config, where)
    if metric is not None:
        _check_metric(metric, cfg, where)
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


def _check_metric(metric: str, cfg: Config, where: str) -> None:
    """The sweep's metric fits the trial: its task, and a split to measure it on."""
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


class _DataChecker:
    """The checks ``train`` makes against the data (output units against the classes, ...),
    made for every trial before any runs; the prepared data is reused while it fits."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}

    def check(self, cfg: Config, where: str) -> None:
        data = cfg.data.model_dump()
        key = json.dumps([data, cfg.loss, cfg.seed, cfg.model.dtype], sort_keys=True, default=str)
        prep = self.cache.get(key)
        if prep is None:
            prep = load_prepared(cfg, where)
            if len(self.cache) >= 4:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = prep
        check_against_data(cfg, prep, where)
