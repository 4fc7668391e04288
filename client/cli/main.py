"""Entry point of the `pocketscan` console script."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from client.cli.registry import CommandRegistry

__all__ = ["build_parser", "main"]

#: Modules that contribute subcommands, each with ``register(registry)``.
COMMAND_MODULES: tuple[str, ...] = (
    "scanner.commands.hashing",
    "scanner.commands.bank",
    "scanner.commands.authority",
    "scanner.commands.snapshot",
    "scanner.commands.scan",
    "research.bench_snapshot",
    "relay.commands",
    "research.bench_relay",
    "research.bench_learned",
    "research.bench_crypto",
    "research.bench_hash",
    "research.commands",
    "client.cli.messaging",
    "client.cli.demo",
    "research.bench_overhead",
    "scanner.commands.classify",
    "client.cli.samples",
    "client.authority.commands",
    "client.cli.protect",
    "research.bench_rollout",
    "client.authority.voucher_cli",
    "research.bench_oprf",
    "client.authority.oprf_commands",
)


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
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the chosen handler and return its exit status."""
    parser = build_parser()
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
