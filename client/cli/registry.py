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

__all__ = ["SHARED_GROUP_HELP", "CommandRegistry", "Handler"]

Handler = Callable[[argparse.Namespace], int]

#: Help of the command groups that several packages add commands to: one text, whichever module creates
#: the group first.
SHARED_GROUP_HELP = {
    "bench": "benchmarks that run pocketscan and its reference side by side",
    "snapshot": "build, verify, publish and fetch signed scanning snapshots",
}


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

    def group(self, name: str, *, help: str | None = None) -> CommandRegistry:
        """Return the registry of a command group, creating it on first use (several packages share one).

        ``help`` defaults to the group's entry in :data:`SHARED_GROUP_HELP`.
        """
        if name not in self._groups:
            help = help or SHARED_GROUP_HELP.get(name)
            if help is None:
                raise ValueError(f"command group {name!r} needs a help text")
            parser = self._subparsers.add_parser(name, help=help, description=help)
            parser.set_defaults(handler=None, group_parser=parser)
            sub = parser.add_subparsers(title="commands", metavar="COMMAND")
            self._groups[name] = CommandRegistry(sub)
        return self._groups[name]
