"""The optional metadata log: what a relay operator learns (who, to whom, sizes, times; never contents).

One JSON object per line, e.g. ``{"ts": 1795000000.1, "event": "send", "from": "...", "to": "...",
"size": 1234, "mid": "17"}``. ``research/`` tools read it to show what the relay sees. Envelope,
blob and prekey bytes are never passed to this module, only their lengths.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["MetadataLog", "read_metadata"]


class MetadataLog:
    """Appends JSON lines to a file; buffered, flushed by :meth:`flush` (the server calls it each second)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: IO[str] = open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115

    def record(self, event: str, now: float, **fields: str | int | float | bool | None) -> None:
        """Record one event; field values are ids, sizes, counts and times only."""
        self._file.write(json.dumps({"ts": round(now, 6), "event": event, **fields}, separators=(",", ":")))
        self._file.write("\n")

    def flush(self) -> None:
        """Write buffered lines to the file."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()


def read_metadata(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The events of a metadata log, oldest first; a torn last line (relay killed) is skipped."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "event" in event:
                yield event
