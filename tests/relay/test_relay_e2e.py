"""End-to-end: real clients (RelayConnection) against a real relay on loopback with a real SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import cbor2
import pytest
from relayfix import new_key, relay, run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from relay import protocol as p
from relay.client import Delivery, RelayConnection
from relay.errors import ConnectionLost, LimitExceeded, NotFound, RelayError, RequestFailed
from relay.limits import Limits
from relay.metadata import read_metadata


async def _drain(conn: RelayConnection, n: int, timeout: float = 10.0) -> list[Delivery]:
    got: list[Delivery] = []
    while len(got) < n:
        msg = await conn.next_message(timeout)
        assert msg is not None, f"only {len(got)} of {n} messages arrived"
        got.append(msg)
    return got


def test_offline_delivery_and_ack(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            b_id = p.account_id_from_public_key(bytes(b.verify_key))
            sent = [await ca.send(b_id, f"envelope {i}".encode()) for i in range(5)]
            cb = await RelayConnection.connect(server.url, b)  # connects after the sends: stored
            got = await _drain(cb, 5)
            assert [m.env for m in got] == [f"envelope {i}".encode() for i in range(5)]
            assert [m.mid for m in got] == [mid for mid, _, _ in sent]
            assert all(m.sender == ca.account for m in got)
            # Not acknowledged yet: a reconnect gets them again (at-least-once).
            await cb.close()
            cb = await RelayConnection.connect(server.url, b)
            again = await _drain(cb, 5)
            assert [m.mid for m in again] == [m.mid for m in got]
            assert await cb.ack([m.mid for m in again]) == [m.mid for m in again]
            await cb.close()
            cb = await RelayConnection.connect(server.url, b)
            assert await cb.next_message(0.3) is None  # acknowledged: deleted
            # Live push to a connected recipient.
            await ca.send(b_id, b"live")
            live = await _drain(cb, 1)
            assert live[0].env == b"live"
            await ca.close()
            await cb.close()

    run(body())


def test_delivery_across_restart(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    a, b = new_key(), new_key()
    b_id = p.account_id_from_public_key(bytes(b.verify_key))

    async def first() -> list[str]:
        async with relay(db) as server:
            ca = await RelayConnection.connect(server.url, a)
            mids = [(await ca.send(b_id, b"kept %d" % i))[0] for i in range(20)]
            await ca.close()
            return mids

    async def second(mids: list[str]) -> None:
        async with relay(db) as server:
            cb = await RelayConnection.connect(server.url, b)
            got = await _drain(cb, 20)
            assert [m.mid for m in got] == mids
            assert got[7].env == b"kept 7"
            await cb.close()

    mids = run(first())
    run(second(mids))


def test_duplicate_suppression(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            cb = await RelayConnection.connect(server.url, b)
            cid = os.urandom(16)
            mid1, _, dup1 = await ca.send(cb.account, b"once", cid=cid)
            mid2, _, dup2 = await ca.send(cb.account, b"once", cid=cid)  # a retry after a lost ack
            assert (mid1, dup1) == (mid2, False) or (mid1 == mid2 and dup2)
            assert not dup1 and dup2
            got = await _drain(cb, 1)
            assert await cb.next_message(0.3) is None
            await cb.ack([got[0].mid])
            # Retried after delivery: still not stored again.
            mid3, _, dup3 = await ca.send(cb.account, b"once", cid=cid)
            assert mid3 == mid1 and dup3
            assert await cb.next_message(0.3) is None
            await ca.close()
            await cb.close()

    run(body())


def test_quota_and_size_limits(tmp_path: Path) -> None:
    limits = Limits(mailbox_max_messages=3, blob_max=600_000, mailbox_sender_share=1.0)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            b_id = p.account_id_from_public_key(bytes(b.verify_key))
            for i in range(3):
                await ca.send(b_id, b"m%d" % i)
            with pytest.raises(LimitExceeded) as quota:
                await ca.send(b_id, b"one too many")
            assert quota.value.code == p.ErrorCode.QUOTA
            # The refused send left the stored ones intact; acking frees room.
            cb = await RelayConnection.connect(server.url, b)
            got = await _drain(cb, 3)
            await cb.ack([got[0].mid])
            await ca.send(b_id, b"fits again")
            # Envelope size: one byte over the protocol limit is refused with too_large and the
            # connection stays open; a legal maximum-size envelope passes.
            big = os.urandom(p.MAX_ENVELOPE)
            await cb.ack([m.mid for m in got[1:]])
            await ca.send(b_id, big)
            with pytest.raises(LimitExceeded) as over:
                await ca.send(b_id, os.urandom(p.MAX_ENVELOPE + 1))
            assert over.value.code == p.ErrorCode.TOO_LARGE
            assert await ca.count_prekeys() == 0  # the connection is still served
            # Blob limit.
            cc = await RelayConnection.connect(server.url, new_key())
            with pytest.raises(LimitExceeded) as too_big:
                await cc.put_blob(os.urandom(700_000))
            assert too_big.value.code == p.ErrorCode.TOO_LARGE
            blob = await cc.put_blob(os.urandom(500_000))
            assert len(await cb.get_blob(blob)) == 500_000
            await cb.close()
            await cc.close()

    run(body())


def test_auth_failures(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            key = new_key()
            # Wrong signature (signed over another nonce).
            async with connect(server.url) as ws:
                hello = p.decode(await ws.recv())
                sig = key.sign(
                    p.auth_transcript(os.urandom(32), hello["conn"], 1, p.relay_authority(server.url))
                ).signature
                await ws.send(
                    p.encode({"t": "auth", "id": 1, "v": 1, "pk": bytes(key.verify_key), "sig": sig})
                )
                reply = p.decode(await ws.recv())
                assert reply["t"] == "error" and reply["code"] == p.ErrorCode.AUTH_FAILED
                await asyncio.wait_for(ws.wait_closed(), 5)
            # Unsupported version.
            async with connect(server.url) as ws:
                hello = p.decode(await ws.recv())
                sig = key.sign(
                    p.auth_transcript(hello["nonce"], hello["conn"], 99, p.relay_authority(server.url))
                ).signature
                await ws.send(
                    p.encode({"t": "auth", "id": 1, "v": 99, "pk": bytes(key.verify_key), "sig": sig})
                )
                reply = p.decode(await ws.recv())
                assert reply["code"] == p.ErrorCode.VERSION
            # A request before auth.
            async with connect(server.url) as ws:
                await ws.recv()
                await ws.send(p.encode({"t": "snapshot.get", "id": 5}))
                reply = p.decode(await ws.recv())
                assert reply["code"] == p.ErrorCode.UNAUTHORIZED and reply["id"] == 5
            # A replayed signature (old nonce) on a new connection fails too.
            async with connect(server.url) as ws:
                first = p.decode(await ws.recv())
                good = key.sign(
                    p.auth_transcript(first["nonce"], first["conn"], 1, p.relay_authority(server.url))
                ).signature
            async with connect(server.url) as ws:
                await ws.recv()
                await ws.send(
                    p.encode({"t": "auth", "id": 1, "v": 1, "pk": bytes(key.verify_key), "sig": good})
                )
                assert p.decode(await ws.recv())["code"] == p.ErrorCode.AUTH_FAILED
            # The client library raises AuthError on refusal; a correct key still works afterwards.
            conn = await RelayConnection.connect(server.url, key)
            assert conn.account == p.account_id_from_public_key(bytes(key.verify_key))
            await conn.close()

    run(body())


def test_only_own_mailbox(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            a, b, eve = new_key(), new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            cb = await RelayConnection.connect(server.url, b)
            ce = await RelayConnection.connect(server.url, eve)
            mid, _, _ = await ca.send(cb.account, b"for b only")
            # Eve acks b's message id and a made-up id: the same error either way; b still has it.
            errors = []
            for candidate in (mid, "999999"):
                with pytest.raises(NotFound) as err:
                    await ce.request(p.Ack(id=0, mids=(candidate,)))
                errors.append(str(err.value))
            assert errors[0] == errors[1]
            assert await ce.next_message(0.3) is None
            got = await _drain(cb, 1)
            assert got[0].mid == mid
            # Unknown blob and unfinished upload of another account: same error.
            upload = await ca.request(p.BlobPut(id=0, data=b"part", final=False))
            msgs = []
            for blob in (upload["blob"], "nonexistent-blob-id"):
                with pytest.raises(NotFound) as err:
                    await ce.get_blob(blob)
                msgs.append(str(err.value))
            assert msgs[0] == msgs[1]
            for conn in (ca, cb, ce):
                await conn.close()

    run(body())


def test_prekeys_handed_out_once_under_concurrency(tmp_path: Path) -> None:
    limits = Limits(
        prekey_target_rate=0
    )  # atomicity, not the per-target rate (tests/relay/test_relay_hostile.py)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            owner = await RelayConnection.connect(server.url, new_key())
            otks = [b"otk-%03d" % i for i in range(30)]
            assert await owner.put_prekeys(b"signed bundle", otks) == 30
            fetchers = [await RelayConnection.connect(server.url, new_key()) for _ in range(20)]

            async def grab(conn: RelayConnection) -> list[bytes | None]:
                out = []
                for _ in range(3):
                    bundle, otk = await conn.get_prekeys(owner.account)
                    assert bundle == b"signed bundle"
                    out.append(otk)
                return out

            results = await asyncio.gather(*(grab(c) for c in fetchers))
            handed = [k for r in results for k in r if k is not None]
            assert sorted(handed) == sorted(otks)  # each exactly once
            assert sum(k is None for r in results for k in r) == 30  # the rest got the bundle only
            assert await owner.count_prekeys() == 0
            with pytest.raises(NotFound):
                await owner.get_prekeys(p.account_id_from_public_key(b"\x01" * 32))
            for c in [owner, *fetchers]:
                await c.close()

    run(body())


def test_blob_roundtrip_and_snapshot_distribution(tmp_path: Path) -> None:
    authority = new_key()

    async def body() -> None:
        async with relay(
            tmp_path / "r.sqlite", authorities=frozenset({bytes(authority.verify_key)})
        ) as server:
            user = await RelayConnection.connect(server.url, new_key())
            data = os.urandom(3 * p.BLOB_CHUNK + 17)
            blob = await user.put_blob(data)
            assert len(blob) >= 32
            assert await user.get_blob(blob) == data
            assert await user.snapshot_info() is None
            # A non-authority may not publish.
            with pytest.raises(RequestFailed) as forbidden:
                await user.publish_snapshot(b"snap", 1)
            assert forbidden.value.code == p.ErrorCode.FORBIDDEN
            pub = await RelayConnection.connect(server.url, authority)
            assert pub.authority
            snap1 = os.urandom(1000)
            assert await pub.publish_snapshot(snap1, 1) == 1
            ann = await asyncio.wait_for(user.snapshots.get(), 5)  # pushed to connected clients
            assert ann.version == 1 and ann.sha256 == hashlib.sha256(snap1).digest()
            info, body_ = await user.fetch_snapshot()  # type: ignore[misc]
            assert info.version == 1 and body_ == snap1
            with pytest.raises(RequestFailed) as stale:
                await pub.publish_snapshot(os.urandom(10), 1)
            assert stale.value.code == p.ErrorCode.STALE
            await pub.publish_snapshot(b"v2" * 500, 2)
            ann2 = await asyncio.wait_for(user.snapshots.get(), 5)
            assert ann2.version == 2
            await user.close()
            await pub.close()

    run(body())


def test_hostile_clients_are_closed_others_served(tmp_path: Path) -> None:
    limits = Limits(account_rate=50, account_burst=100, ping_interval=0.5, ping_timeout=0.5, bad_requests=3)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            cb = await RelayConnection.connect(server.url, b)

            async def still_served() -> None:
                await ca.send(cb.account, b"ping")
                got = await _drain(cb, 1)
                await cb.ack([got[0].mid])

            # Malformed frames: garbage, text, a CBOR non-map, a missing id.
            for bad in (b"\xff\x00garbage", "text frame", cbor2.dumps([1, 2]), cbor2.dumps({"t": "send"})):
                async with connect(server.url) as ws:
                    await ws.recv()
                    await ws.send(bad)
                    reply = p.decode(await ws.recv())
                    assert reply["t"] == "error" and reply["code"] == p.ErrorCode.BAD_REQUEST
                    await asyncio.wait_for(ws.wait_closed(), 5)
            await still_served()
            # Oversized frame: closed by the transport (1009).
            async with connect(server.url, max_size=None) as ws:
                await ws.recv()
                await ws.send(b"\x00" * (p.MAX_FRAME + 1))
                await asyncio.wait_for(ws.wait_closed(), 5)
                assert ws.close_code == 1009
            await still_served()
            # Unknown request types: an error reply each, then closed after too many.
            eve = await RelayConnection.connect(server.url, new_key())
            codes = []
            for i in range(5):
                await eve._ws.send(p.encode({"t": "no.such.thing", "id": 100 + i}))
            with pytest.raises(ConnectionLost):
                for _ in range(10):
                    await eve.count_prekeys()
                    await asyncio.sleep(0.05)
            codes.append(eve.close_reason)
            await still_served()
            # A flood from one account: rate limited and closed.
            flooder = await RelayConnection.connect(server.url, new_key())
            with pytest.raises((ConnectionLost, LimitExceeded)):
                await asyncio.gather(*(flooder.count_prekeys() for _ in range(400)))
            await asyncio.wait_for(flooder.closed.wait(), 5)
            await still_served()
            # Half-open: a TCP peer that completes the handshake and then never answers pings.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert b"101" in await asyncio.wait_for(reader.read(4096), 5)
            # The auth timeout is 10 s, so within 5 s only the missing pongs can drop it.
            before = server.core.connections
            for _ in range(50):
                await asyncio.sleep(0.1)
                if server.core.connections < before:
                    break
            assert server.core.connections < before, "half-open connection was not dropped"
            writer.close()
            await still_served()
            await ca.close()
            await cb.close()

    run(body(), timeout=90)


def test_push_window_flow_control_loses_nothing(tmp_path: Path) -> None:
    limits = Limits(send_queue=40, push_window=8, max_inflight=16, ping_interval=30)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a)
            cb = await RelayConnection.connect(server.url, b)
            # Flow control: only push_window envelopes are pushed before acks arrive.
            for i in range(30):
                await ca.send(cb.account, b"%d" % i)
            for _ in range(100):  # wait for the window to fill, then check that it stays full
                if cb.messages.qsize() >= 8:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            assert cb.messages.qsize() == 8
            got: list[Delivery] = []
            while len(got) < 30:
                m = await cb.next_message(5)
                assert m is not None
                got.append(m)
                await cb.ack([m.mid])
            assert [m.env for m in got] == [b"%d" % i for i in range(30)]
            await ca.close()
            await cb.close()

    run(body())


def test_metadata_log_has_no_contents(tmp_path: Path) -> None:
    log = tmp_path / "meta.jsonl"

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", metadata_log=str(log)) as server:
            ca = await RelayConnection.connect(server.url, new_key())
            cb = await RelayConnection.connect(server.url, new_key())
            await ca.send(cb.account, b"SECRET-CONTENT-123")
            got = await _drain(cb, 1)
            await cb.ack([got[0].mid])
            await ca.close()
            await cb.close()

    run(body())
    lines = list(read_metadata(log))
    assert {"auth", "send", "ack", "disconnect"} <= {e["event"] for e in lines}
    sends = [e for e in lines if e["event"] == "send"]
    assert len(sends) == 1 and sends[0]["size"] == len(b"SECRET-CONTENT-123")
    assert "SECRET" not in log.read_text()


def test_piggybacked_and_delayed_acks(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            a, b = new_key(), new_key()
            ca = await RelayConnection.connect(server.url, a, ack_delay=0.2)
            cb = await RelayConnection.connect(server.url, b, ack_delay=0.2)
            await ca.send(cb.account, b"one")
            first = await _drain(cb, 1)
            cb.ack_soon([first[0].mid])
            await cb.send(ca.account, b"reply carrying the ack")  # no separate ack frame
            assert await server.core.store.fetch(cb.account, None, 10, time.time()) == []
            await ca.send(cb.account, b"two")
            second = await _drain(cb, 1)
            cb.ack_soon([second[0].mid])  # no send follows: acknowledged alone after ack_delay
            assert await server.core.store.fetch(cb.account, None, 10, time.time()) != []  # not yet
            for _ in range(100):
                if await server.core.store.fetch(cb.account, None, 10, time.time()) == []:
                    break
                await asyncio.sleep(0.05)
            assert await server.core.store.fetch(cb.account, None, 10, time.time()) == []
            await ca.close()
            await cb.close()

    run(body())


def test_slow_reader_is_disconnected(tmp_path: Path) -> None:
    limits = Limits(send_queue=24, max_inflight=8, ping_interval=30)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            owner = await RelayConnection.connect(server.url, new_key())
            blob = await owner.put_blob(os.urandom(p.BLOB_CHUNK))  # replies of 256 KiB each
            # A client that asks and asks but never reads its replies.
            key = new_key()
            async with connect(server.url, max_size=None, max_queue=1, close_timeout=0.5) as ws:
                hello = p.decode(await ws.recv())
                sig = key.sign(
                    p.auth_transcript(hello["nonce"], hello["conn"], 1, p.relay_authority(server.url))
                ).signature
                await ws.send(
                    p.encode({"t": "auth", "id": 1, "v": 1, "pk": bytes(key.verify_key), "sig": sig})
                )
                assert p.decode(await ws.recv())["t"] == "ok"
                before = server.core.connections
                for i in range(200):
                    try:
                        await asyncio.wait_for(
                            ws.send(p.encode({"t": "blob.get", "id": 10 + i, "blob": blob})), 2
                        )
                    except (TimeoutError, ConnectionClosed):
                        break  # the relay stopped reading us, or closed us
                for _ in range(100):
                    if server.core.connections < before:
                        break
                    await asyncio.sleep(0.05)
                assert server.core.connections < before, "the slow reader is still connected"
            # Everyone else is still served.
            got = await owner.get_blob(blob)
            assert len(got) == p.BLOB_CHUNK
            await owner.close()

    run(body())


def test_a_foreign_database_file_is_refused_and_left_intact(tmp_path: Path) -> None:
    db = tmp_path / "not-a-relay.sqlite"
    junk = os.urandom(5000)
    db.write_bytes(junk)

    async def body() -> None:
        with pytest.raises(RelayError, match="not a pocketscan relay database"):
            async with relay(db):
                pass

    run(body())
    assert db.read_bytes() == junk
