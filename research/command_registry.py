"""The registry research's command modules (``research``, ``bench ...``) register with: a local Protocol.

Research may use the client's public API but not its command-line modules; ``pocketscan``'s registry
(client/cli/registry.py) satisfies this Protocol structurally.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

__all__ = ["CommandRegistry"]


class CommandRegistry(Protocol):
    """What ``register(registry)`` needs: leaf commands and the shared ``bench`` group."""

    def command(self, name: str, handler: Callable[[argparse.Namespace], int], *, help: str,
                description: str | None = ..., epilog: str | None = ...) -> argparse.ArgumentParser: ...

    def group(self, name: str, *, help: str | None = ...) -> CommandRegistry: ...
