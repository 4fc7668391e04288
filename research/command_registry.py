"""Typing of ``register(registry)`` in research's command modules (``research ...`` and ``bench ...``).

Research may use the client's public API, never its command-line modules: this Protocol, local to
research, is what those modules ask of the registry that ``pocketscan`` hands them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

__all__ = ["CommandRegistry", "Handler"]

#: A command's handler: the parsed arguments in, the exit status out.
Handler = Callable[[argparse.Namespace], int]


class CommandRegistry(Protocol):
    """Leaf commands, and groups such as ``bench`` that several packages add commands to."""

    def command(self, name: str, handler: Handler, *, help: str, description: str | None = ...,
                epilog: str | None = ...) -> argparse.ArgumentParser: ...

    def group(self, name: str, *, help: str | None = ...) -> CommandRegistry: ...
