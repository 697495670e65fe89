"""Where trials run: a local process pool (``LocalBackend``) or a Dask cluster (``DaskBackend``).

Both take a task (a dict for ``worker.run_trial``), return futures, wait for the first to
finish, and turn a worker that died or a task that failed into a failed trial's result.
``make_backend`` picks one from the command's options. Dask is imported only when asked for.
"""

from __future__ import annotations

import math
import os
import threading
import time

from ..errors import ConfigError
from ..system import usable_cores
from .worker import init_worker, run_trial


def make_backend(
    workers: int | None, scheduler: str | None, dask_local: int | None, to_run: int
) -> Backend:
    """A Dask cluster, opened (an existing ``scheduler``, or a LocalCluster of ``dask_local``
    workers), or a local pool of ``workers`` (default: the cores), never more than ``to_run``."""
    if scheduler is not None or dask_local is not None:
        backend = DaskBackend(scheduler, dask_local)
        backend.open()  # Dask missing, or no scheduler there: a ConfigError
        return backend
    return LocalBackend(max(1, min(workers or usable_cores(), to_run)))


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
        try:
            from distributed import Client
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
        self._open_local_cluster()

    def _open_local_cluster(self) -> None:
        import logging
        import signal

        from distributed import Client, LocalCluster

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


Backend = LocalBackend | DaskBackend
