"""One contract suite for every MailStore backend: SQLite (file and memory) and a real Redis."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from relayfix import run

from relay.errors import LimitExceeded, NotFound, RequestFailed
from relay.limits import Limits
from relay.store import MailStore, SnapshotInfo
from relay.store_redis import RedisStore
from relay.store_sqlite import SqliteStore

A = "a" * 32
B = "b" * 32
C = "c" * 32
NOW = 1_800_000_000.0
LIMITS = Limits(
    mailbox_max_messages=5,
    mailbox_max_bytes=1000,
    max_otks=10,
    uploads_per_account=2,
    mailbox_sender_share=1.0,
)


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], MailStore]:
    if request.param == "sqlite-file":
        return lambda: SqliteStore(tmp_path / "s.sqlite")
    if request.param == "sqlite-memory":
        return lambda: SqliteStore(":memory:")
    url = request.getfixturevalue("redis_server")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(url, prefix=prefix)


@asynccontextmanager
async def opened(store: MailStore) -> AsyncIterator[MailStore]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def test_envelopes(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            first, new = await s.put_envelope(
                sender=A, recipient=B, cid=b"c" * 16, env=b"e1", now=NOW, limits=LIMITS
            )
            assert new and first.recipient == B
            again, new2 = await s.put_envelope(
                sender=A, recipient=B, cid=b"c" * 16, env=b"e1", now=NOW, limits=LIMITS
            )
            assert not new2 and again.mid == first.mid
            second, _ = await s.put_envelope(
                sender=C, recipient=B, cid=b"d" * 16, env=b"e2", now=NOW + 1, limits=LIMITS
            )
            assert s.order_key(second.mid) > s.order_key(first.mid)
            got = await s.fetch(B, None, 10, NOW)
            assert [(m.mid, m.sender, m.env) for m in got] == [(first.mid, A, b"e1"), (second.mid, C, b"e2")]
            assert [m.mid for m in await s.fetch(B, first.mid, 10, NOW)] == [second.mid]
            assert await s.fetch(A, None, 10, NOW) == []
            assert await s.ack(A, [first.mid], NOW, LIMITS) == []  # not A's mailbox
            assert await s.ack(B, [first.mid, "garbage", "12-x"], NOW, LIMITS) == [first.mid]
            assert await s.ack(B, [first.mid], NOW, LIMITS) == []
            assert [m.mid for m in await s.fetch(B, None, 10, NOW)] == [second.mid]
            # Expired envelopes are neither fetched nor kept by prune.
            assert await s.fetch(B, None, 10, NOW + LIMITS.ttl + 5) == []
            await s.prune(NOW + LIMITS.ttl + 5)
            assert await s.fetch(B, None, 10, NOW) == []

    run(body())


def test_quota(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            mids = []
            cids = [os.urandom(16) for _ in range(5)]
            for cid in cids:
                stored, _ = await s.put_envelope(
                    sender=A, recipient=B, cid=cid, env=b"x" * 10, now=NOW, limits=LIMITS
                )
                mids.append(stored.mid)
            first_cid = cids[0]
            # A retry of a stored envelope is answered with its id even when the mailbox is full.
            again, new = await s.put_envelope(
                sender=A, recipient=B, cid=first_cid, env=b"x" * 10, now=NOW, limits=LIMITS
            )
            assert not new and again.mid == mids[0]
            with pytest.raises(LimitExceeded):
                await s.put_envelope(
                    sender=A, recipient=B, cid=os.urandom(16), env=b"x", now=NOW, limits=LIMITS
                )
            await s.ack(B, mids[:1], NOW, LIMITS)
            await s.put_envelope(sender=A, recipient=B, cid=os.urandom(16), env=b"x", now=NOW, limits=LIMITS)
            with pytest.raises(LimitExceeded):  # bytes quota
                await s.put_envelope(
                    sender=A, recipient=C, cid=os.urandom(16), env=b"x" * 1001, now=NOW, limits=LIMITS
                )
            assert len(await s.fetch(B, None, 10, NOW)) == 5

    run(body())


def test_prekeys_atomic(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            with pytest.raises(RequestFailed):
                await s.put_prekeys(A, None, [b"k"], False, NOW, LIMITS)
            assert await s.put_prekeys(A, b"bundle", [b"k%d" % i for i in range(8)], False, NOW, LIMITS) == 8
            with pytest.raises(LimitExceeded):
                await s.put_prekeys(A, None, [b"z"] * 3, False, NOW, LIMITS)
            results = await asyncio.gather(*(s.get_prekeys(A) for _ in range(12)))
            keys = [r[1] for r in results if r is not None and r[1] is not None]
            assert sorted(keys) == sorted(b"k%d" % i for i in range(8))
            assert await s.count_prekeys(A) == 0
            assert await s.get_prekeys(B) is None
            assert await s.put_prekeys(A, b"bundle2", [b"n"], True, NOW, LIMITS) == 1
            assert await s.get_prekeys(A) == (b"bundle2", b"n")

    run(body())


def test_blobs_and_snapshots(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            await s.blob_create(A, "blob1", NOW, LIMITS)
            assert await s.blob_get("blob1", 0, NOW) is None  # unfinished
            with pytest.raises(NotFound):
                await s.blob_append(B, "blob1", b"x", False, 100, NOW, LIMITS)  # not the owner
            await s.blob_append(A, "blob1", b"hello ", False, 100, NOW, LIMITS)
            assert await s.blob_append(A, "blob1", b"world", True, 100, NOW, LIMITS) == 11
            assert await s.blob_get("blob1", 0, NOW) == (b"hello ", 2, 11)
            assert await s.blob_get("blob1", 1, NOW) == (b"world", 2, 11)
            assert await s.blob_get("blob1", 2, NOW) is None
            await s.blob_create(A, "big", NOW, LIMITS)
            with pytest.raises(LimitExceeded):
                await s.blob_append(A, "big", b"x" * 101, True, 100, NOW, LIMITS)
            await s.blob_create(A, "u1", NOW, LIMITS)
            await s.blob_create(A, "u2", NOW, LIMITS)
            with pytest.raises(LimitExceeded):
                await s.blob_create(A, "u3", NOW, LIMITS)
            assert await s.snapshot_latest() is None
            info = SnapshotInfo(3, "blob1", 11, b"h" * 32, NOW)
            await s.snapshot_publish(info, A, NOW, LIMITS)
            latest = await s.snapshot_latest()
            assert latest is not None and (latest.version, latest.blob, latest.sha256) == (
                3,
                "blob1",
                b"h" * 32,
            )
            with pytest.raises(RequestFailed):
                await s.snapshot_publish(SnapshotInfo(3, "blob1", 11, b"h" * 32, NOW), A, NOW, LIMITS)
            # The current snapshot outlives the TTL.
            await s.prune(NOW + LIMITS.ttl + 10)
            assert await s.blob_get("blob1", 0, NOW + LIMITS.ttl + 10) is not None

    run(body())


def test_sender_share_of_a_mailbox(make_store: Callable[[], MailStore]) -> None:
    limits = Limits(mailbox_max_messages=8, mailbox_max_bytes=1000, mailbox_sender_share=0.25)

    async def body() -> None:
        async with opened(make_store()) as s:
            mids = []
            for _ in range(limits.sender_max_messages):
                stored, _ = await s.put_envelope(
                    sender=A, recipient=B, cid=os.urandom(16), env=b"x", now=NOW, limits=limits
                )
                mids.append(stored.mid)
            with pytest.raises(LimitExceeded) as share:
                await s.put_envelope(
                    sender=A, recipient=B, cid=os.urandom(16), env=b"x", now=NOW, limits=limits
                )
            assert share.value.code == "quota_exceeded"
            # Another sender still has room in the same mailbox; A has room in another mailbox.
            await s.put_envelope(sender=C, recipient=B, cid=os.urandom(16), env=b"y", now=NOW, limits=limits)
            await s.put_envelope(sender=A, recipient=C, cid=os.urandom(16), env=b"z", now=NOW, limits=limits)
            # Delivery frees the sender's share.
            assert await s.ack(B, mids[:1], NOW, limits) == mids[:1]
            await s.put_envelope(sender=A, recipient=B, cid=os.urandom(16), env=b"x", now=NOW, limits=limits)
            # The byte share: a quarter of 1000 bytes (at least one envelope's maximum) per sender.
            big = Limits(mailbox_max_bytes=4 * 300_000, mailbox_sender_share=0.25)
            await s.put_envelope(
                sender=A, recipient="d" * 32, cid=os.urandom(16), env=b"x" * 262_144, now=NOW, limits=big
            )
            with pytest.raises(LimitExceeded):
                await s.put_envelope(
                    sender=A, recipient="d" * 32, cid=os.urandom(16), env=b"x" * 100_000, now=NOW, limits=big
                )

    run(body())


def test_delivery_forgets_the_recipient_of_an_idempotency_key(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            cid = os.urandom(16)
            stored, _ = await s.put_envelope(sender=A, recipient=B, cid=cid, env=b"e", now=NOW, limits=LIMITS)
            before, new = await s.put_envelope(
                sender=A, recipient=B, cid=cid, env=b"e", now=NOW, limits=LIMITS
            )
            assert not new and before.recipient == B
            assert await s.ack(B, [stored.mid], NOW, LIMITS) == [stored.mid]
            after, new = await s.put_envelope(
                sender=A, recipient=B, cid=cid, env=b"e", now=NOW, limits=LIMITS
            )
            assert not new and after.mid == stored.mid and after.recipient == ""  # still idempotent
            assert await s.fetch(B, None, 10, NOW) == []
            # After the grace period the key is gone (SQLite: prune; Redis: key expiry).
            await s.prune(NOW + LIMITS.delivered_id_ttl + 1)
            if isinstance(s, SqliteStore):
                _, new = await s.put_envelope(
                    sender=A,
                    recipient=B,
                    cid=cid,
                    env=b"e",
                    now=NOW + LIMITS.delivered_id_ttl + 1,
                    limits=LIMITS,
                )
                assert new

    run(body())


def test_blob_quota_and_expiry(make_store: Callable[[], MailStore]) -> None:
    limits = Limits(blob_quota_count=3, blob_quota_bytes=100, uploads_per_account=2)

    async def body() -> None:
        async with opened(make_store()) as s:
            for i in range(3):
                await s.blob_create(A, f"b{i}", NOW, limits)
                await s.blob_append(A, f"b{i}", b"x" * 10, True, 1000, NOW, limits)
            with pytest.raises(LimitExceeded) as count:
                await s.blob_create(A, "b3", NOW, limits)
            assert count.value.code == "quota_exceeded"
            await s.blob_create(B, "other", NOW, limits)  # per account
            # The authority's snapshot uploads are outside the quota.
            await s.blob_create(A, "snap", NOW, limits, quota=False)
            await s.blob_append(A, "snap", b"s" * 500, True, 1000, NOW, limits, quota=False)
            # Bytes: a chunk past B's 100-byte quota is refused and its upload dropped.
            await s.blob_create(B, "big", NOW, limits)
            with pytest.raises(LimitExceeded) as size:
                await s.blob_append(B, "big", b"y" * 101, True, 1000, NOW, limits)
            assert size.value.code == "quota_exceeded"
            with pytest.raises(NotFound):
                await s.blob_append(B, "big", b"y", True, 1000, NOW, limits)
            # Finished blobs expire after finished_blob_ttl; then they no longer count (Redis expires
            # the blob keys on its own clock; its quota bookkeeping follows ``now``).
            later = NOW + limits.finished_blob_ttl + 1
            if isinstance(s, SqliteStore):
                assert await s.blob_get("b0", 0, later) is None
            await s.prune(later)
            await s.blob_create(A, "fresh", later, limits)
            assert await s.blob_append(A, "fresh", b"z" * 90, True, 1000, later, limits) == 90

    run(body())


def test_token_buckets_are_shared_and_clock_driven(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            taken = [await s.take_token("k1", rate=1.0, burst=3, now=NOW) for _ in range(5)]
            assert taken == [True, True, True, False, False]
            assert await s.take_token("k2", rate=1.0, burst=3, now=NOW)  # another key, another bucket
            assert not await s.take_token("k1", rate=1.0, burst=3, now=NOW + 0.5)
            assert await s.take_token("k1", rate=1.0, burst=3, now=NOW + 1.6)  # refilled by the clock
            assert not await s.take_token("k1", rate=1.0, burst=3, now=NOW - 100)  # no refill backwards
            assert all([await s.take_token("k3", rate=0, burst=0, now=NOW) for _ in range(10)])  # unlimited

    run(body())


def test_prekeys_without_one_time_key(make_store: Callable[[], MailStore]) -> None:
    async def body() -> None:
        async with opened(make_store()) as s:
            await s.put_prekeys(A, b"bundle", [b"k1", b"k2"], False, NOW, LIMITS)
            assert await s.get_prekeys(A, take_otk=False) == (b"bundle", None)
            assert await s.count_prekeys(A) == 2
            assert await s.get_prekeys(A) == (b"bundle", b"k1")

    run(body())
