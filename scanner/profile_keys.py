"""The hook through which the messenger lets scanner commands read a profile's account key.

``pocketscan scan --profile DIR`` evaluates OPRF queries under an account's key, which lives in the
messenger's encrypted profile. The scanner imports nothing from the client: the client installs a loader
here when its commands register (``client.authority.oprf_commands``). Cheap to import (no numpy).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["install_profile_key_loader", "profile_key_loader"]

_loader: Callable[[str], bytes] | None = None


def install_profile_key_loader(loader: Callable[[str], bytes]) -> None:
    """Set the function that reads a profile directory's account signing seed (32 bytes)."""
    global _loader
    _loader = loader


def profile_key_loader() -> Callable[[str], bytes] | None:
    """The installed loader, or None when no messenger is installed."""
    return _loader
