"""``client.core.inbound.InboundProcessor`` alone: real ratchet envelopes fed in memory, no relay."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from client.core.inbound import MAX_INBOUND_ATTEMPTS
from client.crypto.attachments import encrypt_image
from client.interfaces import DeliveryChanged, MessageReceived
from client.net import Inbound
from client.policy import ScanOutcome
from client.session import Content
from tests.client.core.partykit import Party

REPO = Path(__file__).resolve().parents[3]
COFFEE = REPO / "samples" / "coffee.jpg"


def _send(alice: Party, bob: Party, content: Content) -> bytes:
    """Alice encrypts ``content`` for bob (setting the session up from his bundle); the envelope bytes."""
    alice.link.bundles[bob.account_id] = bob.bundle()
    if alice.store.contacts.get(bob.account_id) is None:
        alice.store.contacts.add(bob.account_id, now=alice.now)
    before = {i.envelope_id for i in alice.store.outbox.pending()}

    async def enqueue() -> None:
        async with alice.lock():
            await alice.sessions.enqueue(bob.account_id, content, None, kind=content.kind)

    asyncio.run(enqueue())
    [item] = [i for i in alice.store.outbox.pending() if i.envelope_id not in before]
    return item.payload


def _deliver(bob: Party, sender: str, env: bytes, mid: str = "r1") -> None:
    asyncio.run(bob.inbound.handle(Inbound(mid, sender, bob.now, env)))


def test_text_is_stored_announced_and_receipted(alice: Party, bob: Party) -> None:
    env = _send(alice, bob, Content("text", "m1", alice.now, text="hello bob"))
    _deliver(bob, alice.account_id, env)
    [event] = [e for e in bob.emitted if isinstance(e, MessageReceived)]
    assert (event.message.id, event.message.text, event.message.peer) == ("m1", "hello bob", alice.account_id)
    assert [m.id for m in bob.messages.take_cli_inbox()] == ["m1"]
    assert bob.store.dedupe.seen("r1") and bob.inbound.count == 1
    [receipt] = bob.store.outbox.pending()
    assert receipt.peer == alice.account_id and receipt.meta == {"kind": "receipt"}
    assert bob.events[:1] == ["session.decrypt"] and bob.events[-2:] == ["net.send", "link.kick"]
    # the receipt reaches alice: her message is delivered
    from client.store import MessageRecord

    alice.store.messages.add(MessageRecord("m1", bob.account_id, "out", "text", alice.now, "sent",
                                          body="hello bob"))
    _deliver(alice, bob.account_id, receipt.payload, mid="r2")
    assert DeliveryChanged("m1", bob.account_id, "delivered") in alice.emitted
    assert alice.messages.get("m1").state == "delivered"  # type: ignore[union-attr]


def test_a_replayed_envelope_is_dropped(alice: Party, bob: Party) -> None:
    env = _send(alice, bob, Content("text", "m1", alice.now, text="once"))
    _deliver(bob, alice.account_id, env, mid="r1")
    _deliver(bob, alice.account_id, env, mid="r2")  # the same ciphertext under a new relay id
    assert [m.text for m in bob.messages.conversation(alice.account_id)] == ["once"]
    assert bob.store.dedupe.seen("r2") and len(bob.store.outbox.pending()) == 1


def test_garbage_costs_one_envelope_and_is_recorded(alice: Party, bob: Party) -> None:
    _deliver(bob, alice.account_id, b"\x00garbage", mid="bad")
    [shown] = bob.messages.conversation(alice.account_id)
    assert shown.state == "failed" and "could not be decrypted" in shown.text
    assert bob.store.dedupe.seen("bad") and bob.errors and bob.events[-1] == "core.inbound_failed"
    env = _send(alice, bob, Content("text", "m1", alice.now, text="still works"))
    _deliver(bob, alice.account_id, env, mid="good")
    assert [m.text for m in bob.messages.conversation(alice.account_id)][-1] == "still works"


def test_a_relay_naming_no_account_gets_nothing_shown(bob: Party) -> None:
    _deliver(bob, "../../etc", b"whatever", mid="r1")
    assert bob.store.dedupe.seen("r1") and bob.store.contacts.all() == []
    assert not any(isinstance(e, MessageReceived) for e in bob.emitted)


def test_a_reused_message_id_is_not_overwritten(alice: Party, bob: Party) -> None:
    from client.store import MessageRecord

    bob.store.contacts.add(alice.account_id, now=bob.now)
    bob.store.messages.add(MessageRecord("m1", "c" * 32, "out", "text", bob.now, "sent", body="mine"))
    env = _send(alice, bob, Content("text", "m1", alice.now, text="overwrite"))
    _deliver(bob, alice.account_id, env)
    assert bob.messages.get("m1").text == "mine"  # type: ignore[union-attr]
    [shown] = bob.messages.conversation(alice.account_id)
    assert "reused the id" in shown.text and bob.store.outbox.pending() == []  # no receipt for it


def _image_envelope(alice: Party, bob: Party) -> bytes:
    data = COFFEE.read_bytes()
    verdict = alice.scanner.verdict(data, ScanOutcome("no_match", votes=0, min_votes=2))
    encrypted = encrypt_image(data, verdict, content_type="image/jpeg", width=None, height=None)
    blob_id = asyncio.run(alice.link.upload_blob(encrypted.blob))
    bob.link.blobs = alice.link.blobs
    pointer = replace(encrypted.pointer, blob_id=blob_id)
    return _send(alice, bob, Content("image", "img1", alice.now, attachment=pointer))


def test_image_is_downloaded_sealed_and_scanned_when_asked(alice: Party, bob: Party) -> None:
    bob.settings = replace(bob.settings, scan_received=True)
    _deliver(bob, alice.account_id, _image_envelope(alice, bob))
    assert bob.messages.image_bytes("img1") == COFFEE.read_bytes()
    assert "link.download_blob" in bob.events and bob.scanner.events == ["scanner.hash", "scanner.match"]
    record = bob.store.messages.get("img1")
    assert record is not None and record.verdict is not None and record.verdict["received_scan"] is True


def test_an_interrupted_envelope_is_recorded_after_the_last_attempt(alice: Party, bob: Party) -> None:
    env = _image_envelope(alice, bob)

    async def cut(blob_id: str, *, size: int | None = None, timeout: float = 120) -> bytes:
        raise asyncio.CancelledError  # the link dropped while the image downloaded

    bob.link.download_blob = cut  # type: ignore[method-assign]
    for _ in range(MAX_INBOUND_ATTEMPTS):
        with pytest.raises(asyncio.CancelledError):
            _deliver(bob, alice.account_id, env)
    assert not bob.store.dedupe.seen("r1")
    _deliver(bob, alice.account_id, env)
    [shown] = bob.messages.conversation(alice.account_id)
    assert shown.state == "failed" and f"interrupted {MAX_INBOUND_ATTEMPTS} times" in shown.text
    assert bob.store.dedupe.seen("r1")
