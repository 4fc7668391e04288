"""``client.core.sender.Sender`` alone: texts, the pipeline's courier, forwards; recorders, no relay."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client.image_pipeline import ImagePipeline
from client.store import MessageRecord
from tests.client.core.partykit import Party

REPO = Path(__file__).resolve().parents[3]
COFFEE = REPO / "samples" / "coffee.jpg"


def _wire(party: Party, outcome: str = "no_match") -> None:
    """The pipeline over the recorder scanner, the sender as its courier (as the core wires it)."""
    party.scanner.outcome = outcome
    party.sender.pipeline = ImagePipeline(scanner=party.scanner, seal=party.sender.seal_image,
                                          courier=party.sender, policy=lambda: party.settings.policy,
                                          dihedral=lambda: False, trace=party.events.append)


def test_text_is_encrypted_and_queued(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.link.bundles[bob.account_id] = bob.bundle()
    out = asyncio.run(alice.sender.send_text(bob.account_id, "hi"))
    assert out.status == "sent" and out.message is not None and out.message.state == "sending"
    [item] = alice.store.outbox.pending()
    assert item.meta == {"kind": "text", "msg_id": out.message.id} and b"hi" not in item.payload


def test_offline_text_without_a_session_is_queued(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.link.connected = False
    out = asyncio.run(alice.sender.send_text(bob.account_id, "later"))
    assert out.status == "queued" and alice.sessions.awaiting() == 1 and alice.store.outbox.pending() == []
    assert "link.fetch_bundle" not in alice.events


def test_bad_texts_are_errors_and_store_nothing(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    assert asyncio.run(alice.sender.send_text(bob.account_id, "")).error == "empty message"
    too_long = asyncio.run(alice.sender.send_text(bob.account_id, "x" * (64 * 1024 + 1)))
    assert too_long.status == "error" and "too long" in too_long.error
    stranger = asyncio.run(alice.sender.send_text("c" * 32, "hi"))  # not a contact: no bundle is fetched
    assert stranger.status == "error"
    assert alice.messages.conversation(bob.account_id) == [] and alice.store.outbox.pending() == []


def test_image_goes_scan_then_seal_then_upload_then_queue(alice: Party, bob: Party) -> None:
    _wire(alice)
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.link.bundles[bob.account_id] = bob.bundle()
    out = asyncio.run(alice.sender.send_image(bob.account_id, COFFEE))
    assert out.status == "sent" and out.message is not None
    assert alice.scanner.events == ["scanner.hash", "scanner.match", "scanner.verdict"]
    steps = [e for e in alice.events if e.startswith(("session.", "link.upload", "link.kick"))]
    assert steps == ["session.encrypt_image", "link.upload_blob", "session.encrypt", "link.kick"]
    [blob] = alice.link.blobs.values()
    assert COFFEE.read_bytes()[:4096] not in blob
    assert alice.messages.image_bytes(out.message.id) == COFFEE.read_bytes()  # sealed locally too
    assert out.message.label.startswith("coffee.jpg") and out.message.verdict == "no_match"


def test_blocked_image_leaves_nothing(alice: Party, bob: Party) -> None:
    _wire(alice, outcome="match")
    alice.store.contacts.add(bob.account_id, now=alice.now)
    out = asyncio.run(alice.sender.send_image(bob.account_id, COFFEE))
    assert out.status == "blocked" and alice.link.blobs == {} and alice.store.outbox.pending() == []


def test_forward_rescans_the_stored_bytes(alice: Party, bob: Party) -> None:
    _wire(alice)
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.link.bundles[bob.account_id] = bob.bundle()
    ref = alice.media.put(COFFEE.read_bytes())
    alice.store.messages.add(MessageRecord("in1", bob.account_id, "in", "image", alice.now, "received",
                                          local_path=ref, verdict={"name": "coffee.jpg"}))
    out = asyncio.run(alice.sender.forward_image("in1", bob.account_id))
    assert out.status == "sent" and alice.scanner.events[:2] == ["scanner.hash", "scanner.match"]
    assert asyncio.run(alice.sender.forward_image("nope", bob.account_id)).error == "no such image to forward"
