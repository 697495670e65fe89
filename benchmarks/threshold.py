"""Where the fused step stops paying: its epoch time against the NumPy path's, shape by shape.

    python benchmarks/threshold.py                       # the shapes below, 10,000 rows
    python benchmarks/threshold.py --shape 784-256-10:32 --epochs 8

Each shape trains with the fused step (whatever its largest product: ``MAX_PRODUCT`` is lifted
here) and with the NumPy path, one after the other in this process, Adam, float32, the BLAS's
threads as ``backprop train`` chooses them, and prints the median epoch of each and their
ratio (above 1: the fused step is faster). ``nn/fused.py``'s ``MAX_PRODUCT`` is set from these
numbers (README, Performance). The BLAS's kernels matter: run it as your machine is set up.
"""

from __future__ import annotations

import argparse
import statistics

SHAPES = [
    "784-128-10:32",
    "784-256-10:32",
    "256-256-256-10:128",
    "784-512-10:32",
    "784-256-256-10:64",
    "512-512-512-10:64",
    "784-512-512-10:64",
    "784-512-10:128",
    "784-512-512-10:128",
]


def epoch_time(sizes: list[int], batch: int, rows: int, epochs: int, fused: bool) -> float:
    from compare import backprop_trainer  # this folder's: compare.py's network and data

    from backprop_cli.training.threads import choose, limited

    case = (rows, sizes[0], tuple(sizes[1:-1]), sizes[-1], batch, "adam")
    trainer = backprop_trainer(case, epochs + 1, fused)
    want = "fused" if fused else "numpy"
    if trainer.plan.path != want:
        raise SystemExit(
            f"{sizes} at batch {batch}: the {want} path is not taken ({trainer.plan.why})"
        )
    with limited(choose(sizes, batch)):
        times = [r["time_s"] for r in trainer.run()][1:]
    return statistics.median(times)


def main() -> None:
    from backprop_cli.nn import fused

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", help="sizes:batch, e.g. 784-256-10:32")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs (after a warm-up)")
    args = parser.parse_args()
    fused.MAX_PRODUCT = 10**15  # the fused step for every shape here
    for shape in args.shape or SHAPES:
        layers, batch = shape.split(":")
        sizes, bs = [int(u) for u in layers.split("-")], int(batch)
        product = fused.largest_product(sizes, bs)
        f = epoch_time(sizes, bs, args.rows, args.epochs, True)
        n = epoch_time(sizes, bs, args.rows, args.epochs, False)
        print(
            f"{shape:22s} largest product {product / 1e6:6.1f}M  fused {f:.4f} s  "
            f"numpy {n:.4f} s  numpy / fused {n / f:.2f}"
        )


if __name__ == "__main__":
    main()
