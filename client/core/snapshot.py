"""Snapshot: the verified hash-bank snapshot the scanner matches against, and the scanner panel's status.

:meth:`SnapshotService.install` verifies a snapshot file against the pinned authority key, refuses a
rollback (a version below the persisted floor) and a same-version swap with other content, writes
the file atomically and swaps it into the :class:`~client.scanning.SnapshotSlot` the scanner reads;
the floor is persisted in the store. :meth:`SnapshotService.load_saved` reloads the file at start
(a damaged or replaced file is ignored and refetched from the relay). OPRF-keyed snapshots need the
OPRF service client, which this component owns (closed by :meth:`SnapshotService.close`).

Collaborators: the encrypted store, the snapshot file's path, the settings, the account's signing
seed (OPRF requests), the event hub, a clock and a trace callback. No network.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from client.core.shared import Shared
from client.errors import ClientError
from client.interfaces import ScannerStatus, SnapshotChanged
from client.scanning import SnapshotSlot, load_snapshot_view
from client.store import Store
from scanner.errors import SnapshotInvalid

__all__ = ["SnapshotService"]


@dataclass(eq=False, repr=False)
class SnapshotService:
    """The current snapshot (:attr:`slot`), its installation rules and its status."""

    store: Store
    shared: Shared
    snapshot_file: Path
    _: KW_ONLY
    signing_seed: bytes
    slot: SnapshotSlot = field(default_factory=SnapshotSlot, init=False)
    """The verified snapshot the scanner matches against (swapped atomically)."""
    _oprf_client: Any = field(default=None, init=False)

    def authority_key(self) -> bytes:
        """The pinned authority key (empty when none is configured)."""
        pubkey = self.shared.settings().authority_pubkey
        return bytes.fromhex(pubkey) if pubkey else b""

    def oprf(self) -> Any:
        """The OPRF service client (account key authenticates), when the settings name a service."""
        url = self.shared.settings().oprf
        if not url:
            return None
        client = self._oprf_client
        if client is None or client.url != url:
            from scanner.oprf_client import OprfServiceClient

            client = OprfServiceClient(url, signing_seed=self.signing_seed)
            self._oprf_client = client
        return client

    def close(self) -> None:
        """Close the OPRF service client, if one was opened."""
        if self._oprf_client is not None:
            self._oprf_client.close()

    def wants(self, version: int) -> bool:
        """True if a snapshot of ``version`` would be newer than the current one."""
        current = self.slot.current
        return current is None or version > current.version

    def floor(self) -> tuple[int, str | None]:
        """The persisted floor: the newest accepted version and its fingerprint (no same-version swap)."""
        floor = self.store.settings.get("snapshot_floor")
        if (isinstance(floor, list) and len(floor) == 2 and isinstance(floor[0], int)
                and isinstance(floor[1], str)):
            return floor[0], floor[1]
        return int(self.store.settings.get("snapshot_version", 0)), None

    def install(self, data: bytes) -> None:
        """Verify ``data`` against the pinned authority key and swap it in (raises if refused)."""
        key = self.authority_key()
        if not key:
            raise ClientError("no authority key configured: cannot verify snapshots")
        version, fingerprint = self.floor()
        view = load_snapshot_view(data, key, now=self.shared.clock(), min_version=version,
                                  min_fingerprint=fingerprint, oprf=self.oprf())
        current = self.slot.current
        if (current is not None and current.version == view.version
                and current.fingerprint != view.fingerprint):
            raise SnapshotInvalid(f"snapshot version {view.version} reused with different content: refused")
        tmp = self.snapshot_file.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, self.snapshot_file)
        if self.slot.swap(view):
            with self.store.transaction():
                self.store.settings.set("snapshot_version", view.version)
                self.store.settings.set("snapshot_floor", [view.version, view.fingerprint])
            self.shared.trace("scanner.snapshot_installed")
            self.shared.hub.emit(SnapshotChanged(self.status()))

    def load_saved(self) -> None:
        """Reload the stored snapshot file, if it still verifies (else the relay's copy is fetched)."""
        path = self.snapshot_file
        key = self.authority_key()
        if not path.exists() or not key:
            return
        version, fingerprint = self.floor()
        with contextlib.suppress(Exception):  # a damaged or swapped file is refetched from the relay
            view = load_snapshot_view(path.read_bytes(), key, now=self.shared.clock(), min_version=version,
                                      min_fingerprint=fingerprint, oprf=self.oprf())
            self.slot.swap(view)

    def status(self) -> ScannerStatus:
        """What the scanner panel shows: policy, snapshot version, age, votes needed, key id."""
        settings = self.shared.settings()
        snap = self.slot.current
        key = self.authority_key()
        key_id = hashlib.sha256(key).hexdigest()[:16] if key else ""
        if snap is None:
            return ScannerStatus(settings.policy, settings.dihedral, authority_key_id=key_id,
                                 note="waiting for a snapshot")
        return ScannerStatus(settings.policy, settings.dihedral, snap.version, snap.fingerprint,
                             snap.created_at, snap.expires_at, snap.min_votes,
                             snap.authority_key_id or key_id)
