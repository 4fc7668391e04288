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
    mailbox_max_messages=5, mailbox_max_bytes=1000, max_otks=10, uploads_per_account=2, mailbox_sender_share=1.0
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
