"""How many threads the BLAS gets for a run: one where the products are small, its own count
where they are large, or what training.threads (or $BACKPROP_THREADS) says.

A multi-threaded BLAS hands each call's work to its worker threads and waits for them. On a
small network's products (a batch of 32 rows times 64 x 64 weights) the hand-off costs more
than it saves even on an idle machine; on a busy one (a CI runner, a laptop doing something
else) every hand-off waits for a core, and an epoch of a 784-30-10 network took from 25 to 65
times as long as with one thread. The measure of a run's products is its largest layer's

    batch size x fan_in x fan_out

and below ``SMALL_PRODUCT`` (README, Performance: where the measurements put it) the run
uses one thread; above it, the count the BLAS started with (the machine's cores, or what
OMP_NUM_THREADS and its kin said before NumPy loaded: a sweep's workers keep their share).

Changing the count at run time needs threadpoolctl (the ``threads`` extra; scikit-learn
brings it). Without it the BLAS keeps its own count; a small network's training steps do
not use the BLAS where the fused C step (nn/fused.py) runs them, which is why the default
install keeps its speed on a busy machine too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import ConfigError
from ..nn.fused import largest_product

ENV = "BACKPROP_THREADS"
# Below this batch x fan_in x fan_out (the largest layer's), one BLAS thread is faster, idle or
# busy (measured on 2 cores; README, Performance).
SMALL_PRODUCT = 4_000_000


@dataclass(frozen=True)
class Threads:
    """The BLAS thread count a run asks for (None: the BLAS's own) and why."""

    count: int | None
    why: str

    def describe(self) -> str:
        return f"{self.count if self.count else 'the BLAS default'} ({self.why})"


def choose(sizes: Sequence[int], batch_size: int, forced: int | None = None) -> Threads:
    """The run's BLAS threads: ``forced`` (training.threads), else $BACKPROP_THREADS, else by
    the size of the largest product. Raises ConfigError for a $BACKPROP_THREADS that is not
    a positive integer."""
    if forced:
        return Threads(int(forced), "training.threads")
    env = os.environ.get(ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"${ENV}: expected a positive integer (got {env!r})")
        return Threads(int(env), f"${ENV}")
    product = largest_product(sizes, batch_size)
    if product < SMALL_PRODUCT:
        return Threads(1, f"small products: batch x fan_in x fan_out up to {product:,}")
    return Threads(None, f"large products: batch x fan_in x fan_out up to {product:,}")


def can_limit() -> bool:
    """Whether the BLAS's thread count can be changed at run time (threadpoolctl is installed)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def limited(threads: Threads) -> Iterator[bool]:
    """The BLAS at ``threads.count`` threads inside, as before after. Yields whether the count
    was set: False where it is the BLAS's own, or threadpoolctl is not installed."""
    if threads.count is None or not can_limit():
        yield False
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads.count, user_api="blas"):
        yield True
