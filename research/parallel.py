"""A small process pool for the research commands.

:func:`imap` maps a picklable top-level function over jobs in order, on ``workers`` processes (``1`` runs in
this process, which keeps tests and debugging simple). Results come back in job order, so a computation that
is deterministic per job is deterministic overall whatever the number of workers. :func:`progress` wraps an
iterable in a rich progress bar on stderr (silent when ``quiet``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = ["default_workers", "imap", "progress"]

J = TypeVar("J")
R = TypeVar("R")


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    # Workers compute in numpy; keep BLAS/OpenMP from oversubscribing the cores the pool already uses.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def imap(
    fn: Callable[[J], R], jobs: Sequence[J], *, workers: int | None = None, chunksize: int | None = None
) -> Iterator[R]:
    """Yield ``fn(job)`` for each job, in order, using ``workers`` processes (None: all cores)."""
    n = default_workers() if workers is None else max(1, workers)
    n = min(n, max(1, len(jobs)))
    if n == 1:
        for job in jobs:
            yield fn(job)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    size = chunksize or max(1, min(8, len(jobs) // (4 * n)))
    with ctx.Pool(n, initializer=_init_worker) as pool:
        yield from pool.imap(fn, jobs, chunksize=size)


def progress(items: Iterable[R], *, total: int | None, description: str, quiet: bool = False) -> Iterator[R]:
    """Iterate ``items`` behind a progress bar on stderr (the one helper: :mod:`scanner.progress`)."""
    from scanner.progress import progress as _progress

    yield from _progress(items, total=total, description=description, quiet=quiet)
