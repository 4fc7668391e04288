"""Two headless clients exchange 100 texts and 20 images through a real relay that restarts midway.

Nothing may be lost or duplicated: every message sent is received exactly once (counted on the
application's events, not only in the store), images arrive byte-identical, and every message
ends up ``delivered`` at its sender.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from pathlib import Path

import pytest

from client.core import Core
from client.demo.world import DEMO_BANKED, sample_images
from client.interfaces import CoreEvent, MessageReceived
from tests.tui.pilotkit import World, until, world

pytestmark = pytest.mark.slow

TEXTS_EACH = 50
IMAGES_EACH = 10


def test_exchange_across_relay_restart(tmp_path: Path) -> None:
    clean = [p for p in sample_images() if p.name not in DEMO_BANKED]

    async def sender(me: Core, peer: str, tag: str, sent: list[tuple[str, str]], progress: list[int]) -> None:
        for i in range(TEXTS_EACH + IMAGES_EACH):
            if i % 5 == 4:  # every fifth message is an image
                path = clean[i % len(clean)]
                out = await me.sender.send_image(peer, path)
                assert out.status == "sent", out
                assert out.message is not None
                sent.append((out.message.id, hashlib.sha256(path.read_bytes()).hexdigest()))
            else:
                out = await me.sender.send_text(peer, f"{tag} {i}")
                assert out.status == "sent", out
                assert out.message is not None
                sent.append((out.message.id, f"{tag} {i}"))
            progress[0] += 1

    async def main() -> None:
        async with world(tmp_path, "block") as w:
            got: dict[str, list[CoreEvent]] = {"alice": [], "bob": []}
            w.alice.subscribe(got["alice"].append)
            w.bob.subscribe(got["bob"].append)
            await w.alice.start()
            await w.bob.start()
            assert await w.alice.publish_now()
            await until(lambda: (w.alice.snapshot.slot.current is not None
                                 and w.bob.snapshot.slot.current is not None))
            sent_a: list[tuple[str, str]] = []
            sent_b: list[tuple[str, str]] = []
            prog_a, prog_b = [0], [0]
            tasks = [asyncio.create_task(sender(w.alice, w.bob.account_id, "a", sent_a, prog_a)),
                     asyncio.create_task(sender(w.bob, w.alice.account_id, "b", sent_b, prog_b))]
            await until(lambda: prog_a[0] + prog_b[0] >= 48, timeout=120)
            await w.relay.restart()
            await asyncio.gather(*tasks)
            total = TEXTS_EACH + IMAGES_EACH
            await until(lambda: len(w.bob.messages.conversation(w.alice.account_id, limit=1000)) == 2 * total,
                        timeout=120)
            await until(lambda: len(w.alice.messages.conversation(w.bob.account_id, limit=1000)) == 2 * total,
                        timeout=120)
            check(w, w.bob, w.alice.account_id, sent_a, got["bob"])
            check(w, w.alice, w.bob.account_id, sent_b, got["alice"])
            for core, peer in ((w.alice, w.bob.account_id), (w.bob, w.alice.account_id)):
                await until(lambda c=core, p=peer: all(m.state == "delivered"
                                                       for m in c.messages.conversation(p, limit=1000)
                                                       if m.direction == "out"), timeout=60)
            assert w.alice.net.connects >= 2 and w.bob.net.connects >= 2

    asyncio.run(main())


def check(w: World, receiver: Core, sender_id: str, sent: list[tuple[str, str]],
          events: list[CoreEvent]) -> None:
    inbound = [m for m in receiver.messages.conversation(sender_id, limit=1000) if m.direction == "in"]
    assert [m.id for m in inbound] == [mid for mid, _ in sent], "lost, duplicated or reordered in the store"
    counts = Counter(e.message.id for e in events
                     if isinstance(e, MessageReceived) and e.message.peer == sender_id)
    assert set(counts) == {mid for mid, _ in sent} and max(counts.values()) == 1, "lost or duplicated"
    expected = dict(sent)
    for m in inbound:
        if m.kind == "text":
            assert m.text == expected[m.id]
        else:
            assert m.path is not None
            data = receiver.messages.image_bytes(m.id)
            assert data is not None and hashlib.sha256(data).hexdigest() == expected[m.id]
