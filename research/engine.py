"""Dask distributed as the research engine: tasks over partitions, on a cluster or on this machine.

:class:`Engine` is a context manager around a ``distributed.Client``:

* ``Engine(scheduler="tcp://host:8786")`` connects to a running cluster (``dask scheduler`` plus
  ``dask worker`` processes on any machines that have pocketscan installed);
* ``Engine(workers=N)`` starts a :class:`distributed.LocalCluster` of ``N`` single-threaded worker
  *processes* on 127.0.0.1 (every port OS-assigned, the scheduler's HTTP endpoint included; no worker
  dashboards) and stops it on exit.

:meth:`Engine.map_unordered` submits one task per job with at most ``2 x workers`` in flight (so a run of
a million images never holds more than a few partitions in memory) and yields ``(job, result)`` as tasks
finish. Callers store results by the job's own index, so the completion order never changes a result: the
same seed gives the same figures on 1, 2 or 200 workers. Shared read-only data (the bank, the snapshot) is
sent once with :meth:`Engine.share` and handed to every task.

Timeouts are bounded: connecting ``connect_timeout`` seconds, each task ``task_timeout`` seconds without
any task finishing (then :class:`EngineError`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["Engine", "EngineError"]

J = TypeVar("J")
R = TypeVar("R")


class EngineError(RuntimeError):
    """The cluster could not be reached, or a task failed or stalled."""


class Engine:
    """A Dask client on a given scheduler, or on a local cluster of worker processes it owns."""

    def __init__(
        self,
        *,
        scheduler: str | None = None,
        workers: int | None = None,
        connect_timeout: float = 60.0,
        task_timeout: float = 3600.0,
        local_directory: str | None = None,
    ) -> None:
        from research.parallel import default_workers

        self.scheduler = scheduler
        self.requested_workers = workers if workers is not None else default_workers()
        if self.requested_workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.requested_workers}")
        self.connect_timeout = connect_timeout
        self.task_timeout = task_timeout
        self.local_directory = local_directory
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> Engine:
        from distributed import Client, LocalCluster

        # Worker processes compute in numpy: one BLAS/OpenMP thread each, as research.parallel does.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        try:
            if self.scheduler:
                self._client = Client(self.scheduler, timeout=self.connect_timeout)
            else:
                self._cluster = LocalCluster(
                    n_workers=self.requested_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",  # its HTTP server always starts: loopback, OS port
                    worker_dashboard_address=None,
                    silence_logs=logging.ERROR,
                    local_directory=self.local_directory,
                    memory_limit=0,
                )
                self._client = Client(self._cluster, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            where = self.scheduler or "a local cluster"
            raise EngineError(f"cannot start or reach Dask scheduler at {where}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect; stop the local cluster if this engine started it."""
        if self._client is not None:
            self._client.close(timeout=self.connect_timeout)
            self._client = None
        if self._cluster is not None:
            self._cluster.close(timeout=self.connect_timeout)
            self._cluster = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise EngineError("the engine is not started (use it as a context manager)")
        return self._client

    @property
    def workers(self) -> int:
        """Worker processes the scheduler knows now."""
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def describe(self) -> dict[str, Any]:
        """Where the tasks run: for results.json."""
        import dask
        import distributed

        info = self.client.scheduler_info(n_workers=-1)
        return {
            "engine": "dask.distributed",
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "scheduler": self.scheduler or "local cluster (processes on this machine)",
            "workers": len(info.get("workers", {})),
            "threads_per_worker": sorted({int(w.get("nthreads", 0)) for w in info["workers"].values()}),
        }

    def share(self, value: Any) -> Any:
        """Send ``value`` to every worker once; pass the returned handle to :meth:`map_unordered`."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Sequence[J],
        *shared: Any,
        in_flight: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[J, R]]:
        """Run ``fn(job, *shared)`` for every job; yield ``(job, result)`` in completion order.

        At most ``in_flight`` tasks (default twice the workers) are submitted at a time. When
        ``should_stop()`` turns true, no new task is submitted and the ones running are cancelled.
        """
        from distributed import wait

        client = self.client
        limit = in_flight or max(2, 2 * max(1, self.workers))
        pending = iter(jobs)
        running: dict[Any, J] = {}

        def submit_next() -> bool:
            if should_stop is not None and should_stop():
                return False
            try:
                job = next(pending)
            except StopIteration:
                return False
            running[client.submit(fn, job, *shared, pure=False)] = job
            return True

        for _ in range(limit):
            if not submit_next():
                break
        try:
            while running:
                try:
                    done, _ = wait(list(running), timeout=self.task_timeout, return_when="FIRST_COMPLETED")
                except TimeoutError as exc:
                    raise EngineError(f"no task finished within {self.task_timeout:.0f} s") from exc
                for fut in sorted(done, key=lambda f: str(f.key)):
                    job = running.pop(fut)
                    if fut.status == "error":
                        failure = fut.exception()
                        raise EngineError(f"a task failed: {type(failure).__name__}: {failure}") from failure
                    yield job, fut.result()
                    submit_next()
        finally:
            for fut in running:
                fut.cancel()
