"""The Optuna side of a search: its space, sampler, pruner and study, and a trial's reports.

A search (``search:`` in a sweep file) is an Optuna study kept in the sweep's directory,
SWEEP_DIR/study.journal (a ``JournalStorage`` on a ``JournalFileBackend``: a plain log file
that processes on one machine, or on a shared file system, append to under a lock). The
parent asks the study for each trial's values and tells it the result (``adaptive``); the
worker that trains the trial reports its metric every epoch and asks whether to stop
(``Reporter``). Optuna is an optional extra: it is imported here, when a search is run, and
nowhere else.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

from ..errors import require_extra
from .results import PRUNED, SUCCEEDED
from .spec import show_value

STUDY_FILE = "study.journal"
STUDY_NAME = "backprop-sweep"  # one study per sweep directory
_PLAIN = (type(None), bool, int, float, str)  # what Optuna stores as a categorical choice


def require_optuna(source: str = "search"):
    """The optuna module, quiet (its INFO lines would mix with the sweep's output), or the
    one-line MissingExtra error naming the extra that brings it."""
    optuna = require_extra("optuna", "search", f"{source}: search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class Space:
    """The search space as Optuna distributions, and a trial's params as config values.

    ``grid`` keys (KEY: [VALUES]) and ``choice`` draws become a ``CategoricalDistribution``;
    ``uniform: [LOW, HIGH]`` a ``FloatDistribution(LOW, HIGH)``, ``log_uniform`` the same with
    ``log=True``, ``int_uniform`` an ``IntDistribution(LOW, HIGH)`` (both ends included). A
    categorical whose values Optuna cannot store or tell apart (lists, mappings, both 1 and
    True) has them as the sweep file writes them (``'[64, 64]'``); ``values`` maps back.
    """

    def __init__(self, grid: dict[str, list], keys: dict[str, dict] | None = None):
        d = require_optuna().distributions
        self.distributions: dict[str, Any] = {}
        self.choices: dict[str, list] = {}  # a categorical key's values, as the config takes them
        for key, values in grid.items():
            self._categorical(key, values)
        for key, spec in (keys or {}).items():
            ((name, args),) = spec.items()
            if name == "choice":
                self._categorical(key, args)
            elif name == "int_uniform":
                self.distributions[key] = d.IntDistribution(args[0], args[1])
            else:  # uniform, log_uniform
                lo, hi = float(args[0]), float(args[1])
                self.distributions[key] = d.FloatDistribution(lo, hi, log=name == "log_uniform")

    def _categorical(self, key: str, values: list) -> None:
        plain = all(type(v) in _PLAIN for v in values) and all(
            type(values[values.index(v)]) is type(v) for v in values
        )
        self.choices[key] = list(values)
        shown = tuple(values) if plain else tuple(show_value(v) for v in values)
        self.distributions[key] = require_optuna().distributions.CategoricalDistribution(shown)

    def grid(self) -> dict[str, list]:
        """GridSampler's search space: every categorical key's choices."""
        return {k: list(self.distributions[k].choices) for k in self.choices}

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """A trial's params (Optuna's) as the config values they stand for, in the space's order."""
        out = {}
        for key, dist in self.distributions.items():
            p = params[key]
            out[key] = (
                copy.deepcopy(self.choices[key][dist.to_internal_repr(p)])
                if (key in self.choices)
                else p
            )
        return out


def space_of(sweep) -> Space:
    """The sweep's space: its grid and its random keys."""
    return Space(sweep.grid, (sweep.random or {}).get("keys"))


def make_sampler(search: dict, space: Space, asked: int):
    """The search's sampler. TPE (with a constant liar, for trials in flight at once) and
    random are seeded with seed + the trials already asked, so that a resumed search draws new
    values rather than the first invocation's again; grid keeps its seed, which orders the
    grid (Optuna gives trial N the N-th point)."""
    samplers = require_optuna().samplers
    seed = search["seed"]
    if search["sampler"] == "grid":
        return samplers.GridSampler(space.grid(), seed=seed)
    if search["sampler"] == "random":
        return samplers.RandomSampler(seed=seed + asked)
    with warnings.catch_warnings():  # constant_liar was experimental before Optuna 4
        warnings.simplefilter("ignore", require_optuna().exceptions.ExperimentalWarning)
        return samplers.TPESampler(seed=seed + asked, constant_liar=True)


def make_pruner(name: str):
    """Optuna's MedianPruner, HyperbandPruner (its defaults) or NopPruner."""
    pruners = require_optuna().pruners
    return {"median": pruners.MedianPruner, "hyperband": pruners.HyperbandPruner}.get(
        name, pruners.NopPruner
    )()


def storage(sweep_dir: str | Path):
    """SWEEP_DIR/study.journal as an Optuna storage (the file is created if missing)."""
    optuna = require_optuna()
    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna < 4.0 names it JournalFileStorage
        from optuna.storages import JournalFileStorage as JournalFileBackend
    path = str(Path(sweep_dir) / STUDY_FILE)
    with warnings.catch_warnings():  # JournalStorage was experimental before Optuna 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.JournalStorage(JournalFileBackend(path))


def open_study(sweep_dir: str | Path, search: dict, space: Space):
    """The sweep's study: created the first time, loaded after (a resume), with the sampler
    seeded for the trials already asked and the pruner."""
    optuna = require_optuna()
    study = optuna.create_study(
        storage=storage(sweep_dir),
        study_name=STUDY_NAME,
        direction=search["direction"],
        pruner=make_pruner(search["pruner"]),
        load_if_exists=True,
    )
    study.sampler = make_sampler(search, space, len(study.get_trials(deepcopy=False)))
    return study


def tell(study, number: int, status: str, value: float, grid: bool) -> str:
    """Tell the study how trial ``number`` ended (the sweep's status; ``value``, its best
    epoch's metric); the state it now has: COMPLETE, PRUNED or FAIL."""
    states = require_optuna().trial.TrialState
    if status in SUCCEEDED and math.isfinite(value):
        state, values = states.COMPLETE, value
    else:  # a pruned trial's value is its last report, as Optuna keeps it
        state, values = (states.PRUNED if status == PRUNED else states.FAIL), None
    try:
        study.tell(number, values, state=state, skip_if_finished=True)
    except RuntimeError:
        # GridSampler stops the study after its last point, which ask-and-tell cannot do
        # (Optuna documents this RuntimeError, optuna#5141); the trial's state is stored.
        if not grid:
            raise
    return state.name


class Reporter:
    """In the worker that trains a trial: its ``metric`` each epoch to the study
    (``trial.report``), and the pruner's answer (``trial.should_prune``).

    ``task``: storage (the study.journal's path), trial_id, metric, pruner. The worker opens
    the study itself, through the journal file: a pool worker or a Dask worker on this
    machine, or one that sees the sweep directory on a shared file system.
    """

    def __init__(self, task: dict):
        optuna = require_optuna()
        study = optuna.load_study(
            study_name=STUDY_NAME,
            storage=storage(Path(task["storage"]).parent),
            sampler=optuna.samplers.RandomSampler(),  # a worker samples nothing
            pruner=make_pruner(task["pruner"]),
        )
        self.trial = optuna.trial.Trial(study, task["trial_id"])
        self.metric = task["metric"]

    def should_prune(self, record: dict, last: bool = False) -> bool:
        """Report the epoch's metric; True when the pruner says the trial should stop. After
        its ``last`` epoch a trial is complete: the pruner is not asked."""
        value = record.get(self.metric)
        if value is None:
            return False
        with warnings.catch_warnings():
            # an epoch reported before an interruption is reported again on a resume: Optuna
            # keeps the first value, which is the same, and warns
            warnings.simplefilter("ignore")
            self.trial.report(float(value), int(record["epoch"]))
        return not last and self.trial.should_prune()
