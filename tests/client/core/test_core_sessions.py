"""``client.core.sessions.Sessions`` alone: prekey publication, session setup, encrypt-then-queue."""

from __future__ import annotations

import asyncio

import cbor2
import pytest

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.image_pipeline import SendError
from client.interfaces import DeliveryChanged, KeyChanged
from client.session import Content, decrypt_message
from client.store import MessageRecord
from tests.client.core.partykit import Party


def test_first_connection_publishes_then_tops_up(alice: Party) -> None:
    asyncio.run(alice.sessions.on_connected())
    assert alice.link.published == [(len(alice.prekeys.one_time), True)] and alice.sessions.published()
    assert alice.events == ["link.publish_prekeys", "net.prekeys_published"]
    alice.events.clear()
    alice.link.prekeys_left = 100
    asyncio.run(alice.sessions.on_connected())
    assert alice.events == ["link.count_prekeys"]  # enough left, no rotation due: nothing published
    alice.link.prekeys_left = 3
    asyncio.run(alice.sessions.on_connected())
    assert alice.link.published[-1] == (97, False)  # topped up to 100, the bundle kept
    stored = alice.store.keys.load_prekeys()
    assert stored is not None and len(stored.one_time) == len(alice.sessions.prekeys.one_time)


def test_enqueue_sets_up_a_session_and_persists_before_the_kick(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, name="bob", now=alice.now)
    alice.link.bundles[bob.account_id] = bob.bundle()
    message = MessageRecord("m1", bob.account_id, "out", "text", alice.now, "sending", body="hello")

    async def send() -> None:
        async with alice.lock():
            content = Content("text", "m1", alice.now, text="hello")
            await alice.sessions.enqueue(bob.account_id, content, message, kind="text")

    asyncio.run(send())
    assert alice.events == ["link.fetch_bundle", "net.bundle_fetched", "session.encrypt", "net.send",
                            "link.kick"]
    assert alice.sessions.has_session(bob.account_id)
    assert alice.store.contacts.get(bob.account_id).identity_key == bob.identity.public  # type: ignore[union-attr]
    [item] = alice.store.outbox.pending()
    assert item.peer == bob.account_id and item.meta == {"kind": "text", "msg_id": "m1"}
    assert alice.outbox.msg_of == {item.envelope_id: "m1"}
    dec = decrypt_message(bob.identity, bob.prekeys, None, item.payload, sender_account_id=alice.account_id)
    assert Content.from_bytes(dec.plaintext).text == "hello"


def test_a_bundle_with_another_key_flags_a_change_and_sends_nothing(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, identity_key=bob.identity.public, now=alice.now)
    impostor = IdentityKeyPair.generate()  # a bundle of another identity, served for bob's account
    bundle = PreKeyState.create(impostor, alice.now).bundle(impostor.public)
    alice.link.bundles[bob.account_id] = bytes(cbor2.dumps(bundle.to_dict()))
    with pytest.raises(SendError, match="safety number"):
        asyncio.run(alice.sessions.session_for(bob.account_id))
    assert [type(e) for e in alice.emitted] == [KeyChanged]
    assert alice.contacts.key_changed() == {bob.account_id}
    with pytest.raises(SendError, match="verify it before sending"):  # refused before any network request
        asyncio.run(alice.sessions.session_for(bob.account_id))
    assert alice.events.count("link.fetch_bundle") == 1
    assert alice.store.outbox.pending() == []


def test_texts_queued_offline_go_once_connected(alice: Party, bob: Party) -> None:
    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.sessions.queue_for_session(MessageRecord("m1", bob.account_id, "out", "text", alice.now, "sending",
                                                   body="later"))
    assert alice.sessions.awaiting() == 1 and alice.store.outbox.pending() == []
    alice.link.bundles[bob.account_id] = bob.bundle()
    asyncio.run(alice.sessions.on_connected())
    assert alice.sessions.awaiting() == 0
    [item] = alice.store.outbox.pending()
    assert item.meta["msg_id"] == "m1"


def test_a_queued_text_that_cannot_go_fails_alone(alice: Party, bob: Party) -> None:
    carol = IdentityKeyPair.generate().account_id
    for peer in (carol, bob.account_id):
        alice.store.contacts.add(peer, now=alice.now)
    alice.sessions.queue_for_session(MessageRecord("m1", carol, "out", "text", alice.now, "sending",
                                                   body="a"))
    alice.sessions.queue_for_session(MessageRecord("m2", bob.account_id, "out", "text", alice.now, "sending",
                                                   body="b"))
    alice.link.bundles[carol] = b"\xff not cbor"
    alice.link.bundles[bob.account_id] = bob.bundle()
    asyncio.run(alice.sessions.on_connected())
    assert DeliveryChanged("m1", carol, "failed") in alice.emitted
    assert [i.meta["msg_id"] for i in alice.store.outbox.pending()] == ["m2"]
    assert alice.errors and "malformed prekey bundle" in alice.errors[0]
