"""Snapshot files on disk: atomic writes and read-only memory maps (the only file I/O of the snapshot
code)."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from scanner.errors import SnapshotInvalid
from scanner.snapshot.format import MAX_BLOOM_BITS

__all__ = ["map_snapshot_file", "write_snapshot_file"]

_MAX_FILE = MAX_BLOOM_BITS // 8 + 4096


def write_snapshot_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Replacing rather than rewriting matters: a device that memory-maps the previous snapshot keeps reading
    the old inode while the new file is verified.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def map_snapshot_file(path: str | os.PathLike[str]) -> mmap.mmap:
    """Map a snapshot file read-only (the Bloom body is paged in on demand, never read whole).

    Raises:
        SnapshotInvalid: the file is missing, unreadable, empty or larger than any valid snapshot.
    """
    target = Path(path)
    try:
        with open(target, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise SnapshotInvalid(f"{target}: empty file, not a snapshot")
            if size > _MAX_FILE:
                raise SnapshotInvalid(f"{target}: {size} bytes is larger than any valid snapshot")
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise SnapshotInvalid(f"{target}: no such snapshot file") from None
    except OSError as exc:
        raise SnapshotInvalid(f"{target}: cannot read the snapshot ({exc.strerror or exc})") from None
