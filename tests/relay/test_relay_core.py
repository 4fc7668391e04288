"""RelayCore alone: no sockets, an in-memory SQLite store, frames collected in lists, time passed in."""

from __future__ import annotations

import asyncio
from typing import Any

import nacl.signing
from relayfix import run

from relay import protocol as p
from relay.core import RelayCore, Session
from relay.limits import DAY, Limits
from relay.store_sqlite import SqliteStore

RELAY_NAME = "relay.test:443"
NOW = 1_800_000_000.0


class Peer:
    """One fake connection: its session and everything the core queued for it."""

    def __init__(self, core: RelayCore, key: nacl.signing.SigningKey | None = None) -> None:
        self.key = key or nacl.signing.SigningKey.generate()
        self.frames: list[dict[str, Any]] = []
        self.session, hello = core.open("10.0.0.1", self._send, (RELAY_NAME,))
        assert hello["t"] == "hello" and hello["versions"] == [1]
        self.core = core

    def _send(self, frame: dict[str, Any]) -> bool:
        self.frames.append(frame)
        return True

    @property
    def account(self) -> str:
        return p.account_id_from_public_key(bytes(self.key.verify_key))

    async def auth(self, now: float = NOW) -> dict[str, Any]:
        s: Session = self.session
        sig = self.key.sign(p.auth_transcript(s.nonce, s.connection_id, 1, RELAY_NAME)).signature
        return await self.core.handle(s, p.Auth(id=1, v=1, pk=bytes(self.key.verify_key), sig=sig), now)

    def pushed(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["t"] == "msg"]


async def _core(**limits: Any) -> RelayCore:
    store = SqliteStore(":memory:")
    await store.open()
    return RelayCore(store, limits=Limits(**limits))


def test_auth_send_push_ack_in_order() -> None:
    async def body() -> None:
        core = await _core(push_window=3)
        alice, bob = Peer(core), Peer(core)
        assert (await alice.auth())["account"] == alice.account
        reply = await alice.core.handle(bob.session, p.SnapshotGet(id=9), NOW)
        assert reply["code"] == p.ErrorCode.UNAUTHORIZED and bob.session.close_reason
        bob = Peer(core)
        await bob.auth()
        for i in range(5):
            ok = await core.handle(
                alice.session, p.Send(id=i, to=bob.account, env=b"e%d" % i, cid=b"c%07d" % i), NOW
            )
            assert ok["t"] == "ok" and not ok["dup"]
        await core.drain_tasks()
        # Flow control: three pushed, two wait in the store.
        assert [f["env"] for f in bob.pushed()] == [b"e0", b"e1", b"e2"]
        mids = [f["mid"] for f in bob.pushed()]
        acked = await core.handle(bob.session, p.Ack(id=20, mids=tuple(mids)), NOW)
        assert acked["acked"] == mids
        await core.drain_tasks()
        assert [f["env"] for f in bob.pushed()] == [b"e0", b"e1", b"e2", b"e3", b"e4"]
        await core.store.close()

    run(body())


def test_ttl_is_decided_by_the_clock_passed_in() -> None:
    async def body() -> None:
        core = await _core()
        alice, bob = Peer(core), Peer(core)
        await alice.auth()
        await core.handle(alice.session, p.Send(id=1, to=bob.account, env=b"old", cid=b"cid-0001"), NOW)
        later = NOW + 30 * DAY + 1
        await core.store.prune(later)
        await bob.auth(now=later)
        await core.drain_tasks()
        assert bob.pushed() == []  # expired after 30 days, never delivered
        await core.store.close()

    run(body())


def test_strikes_close_only_the_offender() -> None:
    async def body() -> None:
        core = await _core(bad_requests=2)
        eve = Peer(core)
        await eve.auth()
        for i in range(3):
            assert core.refuse_unknown(eve.session, i, "unknown")["code"] == p.ErrorCode.UNKNOWN_TYPE
        assert eve.session.close_reason == "too many refused requests"
        # not_found is not a strike (a second device may ack the same message).
        other = Peer(core)
        await other.auth()
        for i in range(5):
            reply = await core.handle(other.session, p.Ack(id=i, mids=("424242",)), NOW)
            assert reply["code"] == p.ErrorCode.NOT_FOUND
        assert other.session.close_reason is None
        await core.store.close()

    run(body())


def test_snapshot_push_reaches_every_authenticated_session() -> None:
    async def body() -> None:
        authority = nacl.signing.SigningKey.generate()
        store = SqliteStore(":memory:")
        await store.open()
        core = RelayCore(store, authorities=frozenset({bytes(authority.verify_key)}))
        pub, watcher, anonymous = Peer(core, authority), Peer(core), Peer(core)
        assert (await pub.auth())["authority"] is True
        await watcher.auth()
        up = await core.handle(pub.session, p.BlobPut(id=1, data=b"signed snapshot", final=True), NOW)
        sha = b"\x11" * 32
        ok = await core.handle(
            pub.session, p.SnapshotPublish(id=2, version=1, blob=up["blob"], sha256=sha), NOW
        )
        assert ok["t"] == "ok"
        assert [f["version"] for f in watcher.frames if f["t"] == "snapshot"] == [1]
        assert not [f for f in anonymous.frames if f["t"] == "snapshot"]
        await asyncio.sleep(0)
        await store.close()

    run(body())
