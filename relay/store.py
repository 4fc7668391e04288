"""The storage contract of the relay: one ``MailStore`` protocol, two backends.

``store_sqlite.SqliteStore`` (embedded default, WAL, group commit) and ``store_redis.RedisStore``
(shared by a fleet of relay processes) implement it; ``tests/relay/test_store_contract.py`` runs
one suite against both. Every method returns an awaitable (SQLite's hot-path ones queue their
work at once, so operations issued together commit together); a write is durable when it completes.
Items the caller may not see (another account's message, an unfinished or expired blob) are
reported exactly like missing ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from relay.limits import Limits

__all__ = ["MailStore", "MailWake", "PrekeysWake", "SnapshotInfo", "SnapshotWake", "Stored"]


@dataclass(frozen=True, slots=True)
class Stored:
    """One envelope in a mailbox."""

    mid: str
    """Server-assigned id, unique within the recipient's mailbox."""
    sender: str
    recipient: str
    ts: float
    """Time the relay accepted it (seconds since the epoch)."""
    env: bytes
    """The opaque envelope (empty when a retried send finds it already delivered)."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """The newest published snapshot: its blob holds the signed file the clients verify."""

    version: int
    blob: str
    size: int
    sha256: bytes
    published: float


MailWake = Callable[[str], Awaitable[None] | None]
SnapshotWake = Callable[[SnapshotInfo], Awaitable[None] | None]
PrekeysWake = Callable[[str, int], Awaitable[None] | None]


class MailStore(Protocol):
    """What the relay core needs from storage."""

    shared: bool
    """True if other relay processes share this store (they then need wake-ups)."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def close(self) -> None:
        """Flush and release resources."""

    def order_key(self, mid: str) -> tuple[int, int]:
        """Sort key of a message id within one mailbox (ids grow in commit order)."""

    def put_envelope(
        self, *, sender: str, recipient: str, cid: bytes, env: bytes, now: float, limits: Limits
    ) -> Awaitable[tuple[Stored, bool]]:
        """Store an envelope; return it and True, or the earlier one and False for a repeated ``cid``.

        Raises:
            LimitExceeded: the recipient's mailbox quota is full, or the sender's undelivered
                envelopes already fill ``limits.mailbox_sender_share`` of it.
        """

    def fetch(self, recipient: str, after: str | None, limit: int, now: float) -> Awaitable[list[Stored]]:
        """Up to ``limit`` unexpired envelopes of ``recipient`` with ids after ``after``, oldest first."""

    def ack(self, recipient: str, mids: list[str], now: float, limits: Limits) -> Awaitable[list[str]]:
        """Delete these ids from ``recipient``'s mailbox; return those that were there.

        Their idempotency keys forget the recipient and expire ``limits.delivered_id_ttl`` after ``now``.
        """

    async def put_prekeys(
        self, account: str, bundle: bytes | None, otks: list[bytes], replace: bool, now: float, limits: Limits
    ) -> int:
        """Store the bundle and add one-time prekeys; return how many are stored."""

    async def get_prekeys(self, account: str, *, take_otk: bool = True) -> tuple[bytes, bytes | None] | None:
        """The bundle and one one-time prekey, removed atomically (None for the key when none left
        or ``take_otk`` is false)."""

    async def count_prekeys(self, account: str) -> int:
        """How many one-time prekeys ``account`` has left."""

    async def blob_create(
        self, owner: str, blob_id: str, now: float, limits: Limits, *, quota: bool = True
    ) -> None:
        """Start an upload owned by ``owner``.

        Raises:
            LimitExceeded: ``quota_exceeded`` beyond the unfinished-upload bound or (with ``quota``)
                the owner's blob quota: ``limits.blob_quota_count`` live blobs or
                ``limits.blob_quota_bytes`` bytes (expired blobs do not count).
        """

    async def blob_append(
        self,
        owner: str,
        blob_id: str,
        data: bytes,
        final: bool,
        max_size: int,
        now: float,
        limits: Limits,
        *,
        quota: bool = True,
    ) -> int:
        """Append a chunk to an unfinished upload of ``owner``; seal it if ``final``; return its size.

        A sealed blob lives ``limits.finished_blob_ttl`` seconds. Over ``max_size`` (``too_large``)
        or over the byte quota (``quota_exceeded``), the partial upload is dropped.
        """

    async def blob_get(self, blob_id: str, chunk: int, now: float) -> tuple[bytes, int, int] | None:
        """Chunk ``chunk`` of a sealed, unexpired blob with its chunk count and size, or None."""

    async def snapshot_publish(self, info: SnapshotInfo, publisher: str, now: float, limits: Limits) -> None:
        """Make ``info`` the newest snapshot (RequestFailed ``stale_version`` unless newer)."""

    async def snapshot_latest(self) -> SnapshotInfo | None:
        """The newest snapshot, if any."""

    async def prune(self, now: float) -> dict[str, int]:
        """Delete everything past its TTL; return counts per kind."""

    async def take_token(self, key: str, *, rate: float, burst: float, now: float) -> bool:
        """Spend one token of the bucket ``key`` (``limits.take_token`` rules); shared by a fleet."""

    async def notify_snapshot(self, info: SnapshotInfo) -> None:
        """Tell other relay processes that a newer snapshot was published (no-op when not shared)."""

    async def notify_prekeys_low(self, account: str, count: int) -> None:
        """Tell other relay processes that ``account`` has only ``count`` one-time prekeys left."""

    async def listen(
        self, on_mail: MailWake, on_snapshot: SnapshotWake, on_prekeys_low: PrekeysWake | None = None
    ) -> None:
        """Run until cancelled, calling back on wake-ups from other processes (returns if not shared).

        ``on_mail("")`` means "any mailbox may have mail" (after a lost subscription).
        """
