"""Scale-out: two `pocketscan relay` processes sharing one real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from relayfix import RelayProcess, new_key, run

from relay import protocol as p
from relay.client import RelayConnection


@pytest.mark.slow
def test_two_relays_share_one_redis(redis_server: str, redis_prefix: str) -> None:
    authority = new_key()
    common = [
        "--redis",
        redis_server,
        "--redis-prefix",
        redis_prefix,
        "--authority-pubkey",
        bytes(authority.verify_key).hex(),
    ]
    one, two = RelayProcess(*common), RelayProcess(*common)
    try:

        async def body() -> None:
            a, b = new_key(), new_key()
            b_id = p.account_id_from_public_key(bytes(b.verify_key))
            ca = await RelayConnection.connect(one.url, a)
            # Offline: stored through relay one, fetched through relay two.
            offline = [(await ca.send(b_id, b"offline %d" % i))[0] for i in range(10)]
            cb = await RelayConnection.connect(two.url, b)
            got = [await cb.next_message(5) for _ in range(10)]
            assert [m.mid for m in got if m] == offline
            await cb.ack(offline)
            # Live: pushed to b on relay two through the pub/sub wake-up.
            for i in range(50):
                await ca.send(b_id, b"live %d" % i)
            live = [await cb.next_message(5) for _ in range(50)]
            assert [m.env for m in live if m] == [b"live %d" % i for i in range(50)]
            await cb.ack([m.mid for m in live if m])
            # A burst of 300 pipelined sends (more than the 64 pooled Redis connections): all stored,
            # all delivered in order through the other process.
            burst = await asyncio.gather(*(ca.send(b_id, b"burst %03d" % i) for i in range(300)))
            assert len({mid for mid, _, _ in burst}) == 300
            got_burst: list[bytes] = []
            while len(got_burst) < 300:
                msg = await cb.next_message(10)
                assert msg is not None
                got_burst.append(msg.env)
                cb.ack_soon([msg.mid])
            assert sorted(got_burst) == sorted(b"burst %03d" % i for i in range(300))
            await cb.flush_acks()
            # Duplicate suppression across processes: the retry goes to the other relay.
            cid = os.urandom(16)
            mid1, _, _ = await ca.send(b_id, b"retry", cid=cid)
            cb2 = await RelayConnection.connect(two.url, a)
            mid2, _, dup = await cb2.send(b_id, b"retry", cid=cid)
            assert mid1 == mid2 and dup
            first = await cb.next_message(5)
            assert first is not None and first.env == b"retry"
            assert await cb.next_message(0.5) is None
            # Prekeys uploaded on one, handed out once on two.
            await ca.put_prekeys(b"bundle-a", [b"k1", b"k2"])
            fetched = await asyncio.gather(*(cb.get_prekeys(ca.account) for _ in range(3)))
            assert sorted(k for _, k in fetched if k) == [b"k1", b"k2"]
            # Blobs and snapshot announcements cross processes too.
            blob = await ca.put_blob(os.urandom(300_000))
            assert len(await cb.get_blob(blob)) == 300_000
            pub = await RelayConnection.connect(one.url, authority)
            snap = os.urandom(5000)
            await pub.publish_snapshot(snap, 7)
            ann = await asyncio.wait_for(cb.snapshots.get(), 5)
            assert ann.version == 7 and ann.sha256 == hashlib.sha256(snap).digest()
            for conn in (ca, cb, cb2, pub):
                await conn.close()

        run(body())
    finally:
        one.stop()
        two.stop()
