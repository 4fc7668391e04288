"""Progress for long commands: the one helper every ``pocketscan`` command uses.

A bar (or a spinner when the total is unknown) goes to **stderr**, and only when stderr is a terminal:
``--json``, ``--quiet``, pipes, files and CI see nothing, so scripts and logs stay clean. It lives in
``scanner`` because every package (client, relay, research) may import scanner, never the reverse.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["progress", "progress_bar", "progress_enabled", "progress_tasks"]

R = TypeVar("R")
Advance = Callable[..., None]
"""``advance(n=1, description=None, completed=None)``: count ``n`` more done (or set ``completed``),
optionally change the label."""


def progress_enabled(*, quiet: bool = False) -> bool:
    """True if a person is watching: not ``quiet`` (``--quiet`` or ``--json``) and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


def _progress_display() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                    redirect_stdout=False, redirect_stderr=False)  # results on stdout stay on stdout


@contextmanager
def progress_tasks(*, quiet: bool = False) -> Iterator[Callable[[str, int | None], Advance]]:
    """Several labelled tasks in one display: ``add(label, total) -> advance`` (no-ops when not shown)."""
    if not progress_enabled(quiet=quiet):
        yield lambda label, total: (lambda n=1, description=None, completed=None: None)
        return
    with _progress_display() as display:

        def add(label: str, total: int | None) -> Advance:
            task = display.add_task(label, total=total)

            def advance(n: int = 1, description: str | None = None, completed: int | None = None) -> None:
                fields: dict[str, Any] = {"description": description} if description else {}
                if completed is None:
                    display.update(task, advance=n, **fields)
                else:
                    display.update(task, completed=completed, **fields)

            return advance

        yield add


@contextmanager
def progress_bar(description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Advance]:
    """One task: ``with progress_bar("hashing", len(files)) as advance: ... advance()``."""
    with progress_tasks(quiet=quiet) as add:
        yield add(description, total)


def progress(items: Iterable[R], *, total: int | None, description: str, quiet: bool = False) -> Iterator[R]:
    """Iterate ``items``, advancing a bar for each one."""
    with progress_bar(description, total, quiet=quiet) as advance:
        for item in items:
            yield item
            advance()
