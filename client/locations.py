"""Where a profile lives on disk (the only place that knows the file names)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "default_profile_dir"]


def default_profile_dir() -> Path:
    """``$POCKETSCAN_PROFILE``, else ``$XDG_DATA_HOME/pocketscan/default`` (``~/.local/share/...``)."""
    env = os.environ.get("POCKETSCAN_PROFILE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pocketscan" / "default"


@dataclass(frozen=True)
class Profile:
    """The files of one account's profile directory."""

    root: Path

    @property
    def settings_file(self) -> Path:
        """Non-secret settings (relay URL, authority key, policy) as JSON."""
        return self.root / "settings.json"

    @property
    def store_file(self) -> Path:
        """The encrypted SQLite store (identity, sessions, contacts, messages)."""
        return self.root / "store.sqlite"

    @property
    def snapshot_file(self) -> Path:
        """The last verified snapshot (replaced atomically)."""
        return self.root / "snapshot.bin"

    @property
    def media_dir(self) -> Path:
        """Decrypted received images."""
        return self.root / "media"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def ensure(self) -> Profile:
        """Create the directory (mode 0700) and return self."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.media_dir.mkdir(exist_ok=True)
        return self

    def exists(self) -> bool:
        return self.settings_file.exists()
