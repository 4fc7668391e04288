"""A small registry so each package contributes its own subcommands to `pocketscan`.

A command module exposes ``register(registry: CommandRegistry) -> None``. It must stay
cheap to import: heavy modules (textual, onnxruntime, matplotlib, websockets) are imported
inside the handlers, so ``pocketscan --help`` and ``pocketscan hash`` start fast.

Handlers take the parsed ``argparse.Namespace`` and return the process exit status.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["CommandRegistry", "Handler"]

Handler = Callable[[argparse.Namespace], int]


class CommandRegistry:
    """Wraps an argparse sub-parser action; groups (``bank``, ``snapshot``, ``bench``) are shared."""

    def __init__(self, subparsers: Any) -> None:
        self._subparsers = subparsers
        self._groups: dict[str, CommandRegistry] = {}

    def command(self, name: str, handler: Handler, *, help: str, description: str | None = None,
                epilog: str | None = None) -> argparse.ArgumentParser:
        """Add a leaf subcommand whose handler runs when it is chosen."""
        parser: argparse.ArgumentParser = self._subparsers.add_parser(
            name,
            help=help,
            description=description or help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, *, help: str) -> CommandRegistry:
        """Return the registry of a command group, creating it on first use (several packages share one)."""
        if name not in self._groups:
            parser = self._subparsers.add_parser(name, help=help, description=help)
            parser.set_defaults(handler=None, group_parser=parser)
            sub = parser.add_subparsers(title="commands", metavar="COMMAND")
            self._groups[name] = CommandRegistry(sub)
        return self._groups[name]
