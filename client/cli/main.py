"""Entry point of the `pocketscan` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, distributions

from client.cli.registry import CommandRegistry

__all__ = ["ENTRY_POINT_GROUP", "CommandsNotInstalled", "build_parser", "command_entry_points", "main"]

#: Entry-point group of the modules that contribute subcommands. Each entry names a
#: ``register(registry)`` function (pyproject.toml, ``[project.entry-points."pocketscan.commands"]``);
#: entry names sort in help order.
ENTRY_POINT_GROUP = "pocketscan.commands"
_DISTRIBUTION = "pocketscan"


class CommandsNotInstalled(RuntimeError):
    """No installed pocketscan metadata declares the commands (an old or broken install)."""


def command_entry_points() -> list[EntryPoint]:
    """pocketscan's own command entry points in help order (by name), then other packages' by name.

    An installed ``.dist-info`` wins over a ``pocketscan.egg-info`` that a build leaves in a checkout
    (on ``sys.path`` when Python runs from there), which may be stale; the first one found breaks ties.
    """
    own: list[tuple[bool, int, list[EntryPoint]]] = []
    plugins: dict[str, EntryPoint] = {}
    for index, dist in enumerate(distributions()):
        found = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if dist.metadata["Name"] == _DISTRIBUTION:
            if found:
                build_leftover = str(getattr(dist, "_path", "")).endswith(".egg-info")
                own.append((build_leftover, index, found))
        else:
            for ep in found:
                plugins.setdefault(ep.name, ep)
    if not own:
        raise CommandsNotInstalled(
            f"no {ENTRY_POINT_GROUP!r} entry points found: reinstall pocketscan (pip install -e .)"
        )
    chosen = min(own, key=lambda candidate: candidate[:2])[2]
    return sorted(chosen, key=lambda ep: ep.name) + sorted(plugins.values(), key=lambda ep: ep.name)


def build_parser() -> argparse.ArgumentParser:
    """Build the full parser from every command module."""
    parser = argparse.ArgumentParser(
        prog="pocketscan",
        description=(
            "pocketscan: an end-to-end encrypted terminal messenger with on-device perceptual "
            "hash scanning, a dumb relay, and a research toolkit to measure what scanning costs."
        ),
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    registry = CommandRegistry(sub)
    for entry in command_entry_points():
        register: Callable[[CommandRegistry], None] = entry.load()
        register(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the chosen handler and return its exit status."""
    try:
        parser = build_parser()
    except CommandsNotInstalled as exc:
        print(f"pocketscan: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        group_parser = getattr(args, "group_parser", parser)
        group_parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
