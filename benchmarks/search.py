"""An adaptive search (Optuna: TPE sampler, median pruner) against a grid sweep of as many
trials, over the same space, with the same per-trial budget of epochs.

    python benchmarks/search.py [--config iris|digits|both] [--trials 30] [--workers 2] [--json]

The space: optimizer.lr from 1e-4 to 0.3 (log scale) and model.layers[0].units from 4 to
64. The grid has 6 learning rates (log-spaced, 1e-4 ... 0.3) x 5 widths (4, 8, 16, 32, 64)
= 30 points; the search draws from the same ranges (``log_uniform``, ``int_uniform``). A
third row is the same search without its pruner, to tell the sampler's part from the
pruner's. Each sweep is ``backprop sweep`` as a user runs it (a new process, a local pool of
``--workers``), timed from start to exit. It reports the trials, how many were pruned, the
epochs trained in all (the pruner's saving), the best val_loss (what both rank by) and the
test accuracy of that best trial (a split neither looked at). needs the search extra
(pip install 'backprop-cli[search]').
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"iris": ROOT / "configs" / "iris.yaml", "digits": ROOT / "configs" / "digits.yaml"}
EPOCHS = 30
LRS = [1.0e-4, 4.9e-4, 2.4e-3, 1.2e-2, 6.1e-2, 0.3]  # log-spaced, 1e-4 ... 0.3
UNITS = [4, 8, 16, 32, 64]


def sweep_files(config: Path, trials: int) -> dict[str, str]:
    """The three sweep files: the grid, the search with its pruner, the search without."""
    head = f"base: {config}\nset: {{training.epochs: {EPOCHS}}}\n"
    space = (
        "random:\n  keys:\n    optimizer.lr: {log_uniform: [1.0e-4, 0.3]}\n"
        "    model.layers[0].units: {int_uniform: [4, 64]}\n"
    )
    grid = f"grid:\n  optimizer.lr: {LRS}\n  model.layers[0].units: {UNITS}\n"
    return {
        f"grid ({len(LRS)} x {len(UNITS)})": head + grid,
        "TPE + median pruner": head
        + space
        + f"search: {{sampler: tpe, trials: {trials}, pruner: median, seed: 0}}\n",
        "TPE, no pruner": head
        + space
        + f"search: {{sampler: tpe, trials: {trials}, pruner: none, seed: 0}}\n",
    }


def run_sweep(name: str, text: str, workdir: Path, workers: int) -> dict:
    """``backprop sweep`` on the file, timed; its summary and sweep_summary.csv, condensed."""
    f = workdir / f"{abs(hash(name))}.yaml"
    f.write_text(text)
    out = workdir / f"out-{abs(hash(name))}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    cmd = [sys.executable, "-m", "backprop_cli", "sweep", str(f), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--workers", str(workers), "--json"], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: some trial failed (diverged), as a sweep may
        sys.exit(f"{name}: backprop sweep exited {proc.returncode}: {proc.stderr.strip()}")
    summary = json.loads(proc.stdout.splitlines()[-1])
    with open(out / "sweep_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    best = summary["best"] or {}
    return {
        "sweep": name,
        "trials": summary["trials"],
        "pruned": summary["pruned"],
        "failed": summary["failed"],
        "epochs": sum(int(r["epochs"] or 0) for r in rows),
        "best_val_loss": best.get("val_loss"),
        "best_test_accuracy": best.get("test_accuracy"),
        "best_trial": best.get("trial"),
        "wall_s": wall,
    }


def table(config: str, results: list[dict]) -> str:
    lines = [
        f"{config} ({EPOCHS} epochs a trial)",
        "",
        "| sweep | trials | pruned | epochs trained | best val_loss | its test accuracy | wall time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['sweep']} | {r['trials']} | {r['pruned']} | {r['epochs']} | "
            f"{r['best_val_loss']:.4f} | {r['best_test_accuracy']:.4f} | {r['wall_s']:.1f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=[*CONFIGS, "both"], default="both")
    p.add_argument("--trials", type=int, default=len(LRS) * len(UNITS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true", help="JSON Lines, one per sweep")
    args = p.parse_args()
    names = list(CONFIGS) if args.config == "both" else [args.config]
    for config in names:
        results = []
        with tempfile.TemporaryDirectory(prefix="backprop-search-bench-") as tmp:
            for name, text in sweep_files(CONFIGS[config], args.trials).items():
                results.append(run_sweep(name, text, Path(tmp), args.workers))
        if args.json:
            for r in results:
                print(json.dumps({"config": config, **r}))
        else:
            print(table(config, results) + "\n")


if __name__ == "__main__":
    main()
