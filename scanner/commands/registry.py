"""The registry the scanner's command modules add their subcommands to, as a local Protocol.

The scanner package imports no other package, not even for typing: ``pocketscan``'s registry
(client/cli/registry.py) satisfies this Protocol structurally.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

__all__ = ["CommandRegistry"]


class CommandRegistry(Protocol):
    """Adds leaf commands and shared command groups (``bank``, ``snapshot``) to the parser."""

    def command(self, name: str, handler: Callable[[argparse.Namespace], int], *, help: str,
                description: str | None = ..., epilog: str | None = ...) -> argparse.ArgumentParser: ...

    def group(self, name: str, *, help: str | None = ...) -> CommandRegistry: ...
