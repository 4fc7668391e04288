"""``client.core.messages.Messages`` alone: views, sealed images, the CLI inbox, legacy media."""

from __future__ import annotations

from pathlib import Path

from client.crypto.attachments import AttachmentPointer
from client.store import MessageRecord
from tests.client.core.partykit import Party

REPO = Path(__file__).resolve().parents[3]
COFFEE = REPO / "samples" / "coffee.jpg"


def _image(party: Party, peer: str, ref: str | None, *, verdict: object = None) -> MessageRecord:
    pointer = AttachmentPointer("b1", bytes(64), bytes(32), 10, "image/jpeg", 640, 480)
    return MessageRecord("img1", peer, "out", "image", party.now, "sent", attachment=pointer, local_path=ref,
                         verdict=verdict)  # type: ignore[arg-type]


def test_text_view_and_conversation(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.store.messages.add(MessageRecord("m1", bob.account_id, "in", "text", alice.now, "received",
                                          body="hi"))
    [view] = alice.messages.conversation(bob.account_id)
    assert (view.id, view.text, view.direction, view.state, view.path) == ("m1", "hi", "in", "received", None)
    assert alice.messages.get("m1") == view
    assert alice.messages.get("nope") is None


def test_image_view_label_and_sealed_bytes(alice: Party, bob: Party) -> None:
    data = COFFEE.read_bytes()
    ref = alice.media.put(data)
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.store.messages.add(_image(alice, bob.account_id, ref,
                                   verdict={"outcome": "no_match", "votes": 0, "name": "coffee.jpg"}))
    view = alice.messages.get("img1")
    assert view is not None and view.label == "coffee.jpg 640x480"
    assert (view.verdict, view.votes, view.path) == ("no_match", 0, str(alice.media.path(ref)))
    assert alice.messages.image_bytes("img1") == data
    assert data[:4096] not in alice.media.path(ref).read_bytes()  # sealed at rest


def test_tampered_image_is_none_with_a_note(alice: Party, bob: Party) -> None:
    ref = alice.media.put(COFFEE.read_bytes())
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.store.messages.add(_image(alice, bob.account_id, ref))
    sealed = alice.media.path(ref)
    sealed.write_bytes(sealed.read_bytes()[:-1] + b"\x00")
    assert alice.messages.image_bytes("img1") is None
    assert len(alice.errors) == 1 and "failed authentication" in alice.errors[0]


def test_hostile_stored_row_gives_a_failed_view(alice: Party, bob: Party) -> None:
    bad = _image(alice, bob.account_id, None, verdict={"outcome": 7, "votes": 10**9, "name": ["x"]})
    view = alice.messages.view(bad)
    assert view.verdict is None and view.votes is None and view.label == "photo 640x480"
    broken = MessageRecord("m2", bob.account_id, "in", "text", "not a time", "received")  # type: ignore[arg-type]
    failed = alice.messages.view(broken)
    assert failed.state == "failed" and "malformed" in failed.text


def test_cli_inbox_queue_and_take(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    for i in range(3):
        record = MessageRecord(f"m{i}", bob.account_id, "in", "text", alice.now + i, "received", body=str(i))
        alice.store.messages.add(record)
        alice.messages.queue_for_cli(f"m{i}")
    alice.messages.queue_for_cli("gone")  # a queued id without a message is skipped
    assert alice.messages.cli_inbox_waiting()
    assert [m.text for m in alice.messages.take_cli_inbox()] == ["0", "1", "2"]
    assert not alice.messages.cli_inbox_waiting() and alice.messages.take_cli_inbox() == []


def test_legacy_clear_images_are_sealed_once(alice: Party, bob: Party) -> None:
    media_dir = alice.media.root
    media_dir.mkdir(parents=True, exist_ok=True)
    legacy = media_dir / "old.jpg"
    legacy.write_bytes(COFFEE.read_bytes())
    stray = media_dir / "stray.jpg"
    stray.write_bytes(b"clear")
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.store.messages.add(_image(alice, bob.account_id, str(legacy)))
    alice.messages.adopt_plaintext_media(media_dir)
    assert not legacy.exists() and not stray.exists()
    assert alice.messages.image_bytes("img1") == COFFEE.read_bytes()
    alice.messages.adopt_plaintext_media(media_dir)  # once per profile: a second call changes nothing
    assert alice.messages.image_bytes("img1") == COFFEE.read_bytes()
