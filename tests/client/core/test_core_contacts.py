"""``client.core.contacts.Contacts`` alone: a real store, a recorded hub, no network."""

from __future__ import annotations

import asyncio

import pytest

from client.core.contacts import format_invite, parse_contact_ref
from client.crypto.identity import IdentityKeyPair
from client.errors import ClientError, UnknownContact
from client.interfaces import ContactView, KeyChanged
from tests.client.core.partykit import Party


def test_add_by_invite_takes_the_suggested_name_and_lists_it(alice: Party, bob: Party) -> None:
    view = asyncio.run(alice.contacts.add(format_invite(bob.account_id, "bob")))
    assert view == ContactView(bob.account_id, "bob")
    assert alice.contacts.all() == [view]
    assert alice.contacts.resolve("bob") == bob.account_id
    assert alice.contacts.label(bob.account_id) == "bob"
    assert alice.events == ["store.contact_added"]


def test_add_refuses_own_id_and_garbage(alice: Party) -> None:
    with pytest.raises(ClientError, match="your own account"):
        asyncio.run(alice.contacts.add(alice.account_id))
    with pytest.raises(ClientError):
        asyncio.run(alice.contacts.add("psinv:not-an-id"))
    assert alice.contacts.all() == []
    with pytest.raises(UnknownContact):
        alice.contacts.resolve("nobody")


def test_label_of_unknown_and_malformed_senders(alice: Party, bob: Party) -> None:
    assert alice.contacts.label(bob.account_id) == bob.account_id
    assert alice.contacts.label("../../etc/passwd") == "?"


def test_invite_codes_round_trip_and_strip_odd_names(bob: Party) -> None:
    code = format_invite(bob.account_id, "b o/b;")
    assert code == f"psinv:{bob.account_id}:bob"
    assert parse_contact_ref(code) == (bob.account_id, "bob")
    assert parse_contact_ref(f"  {bob.account_id} ") == (bob.account_id, "")


def test_key_change_is_flagged_until_verified(alice: Party, bob: Party) -> None:
    old = bob.identity.public
    alice.store.contacts.add(bob.account_id, name="bob", identity_key=old, now=alice.now)
    before = alice.contacts.safety_number(bob.account_id)
    assert len(before) == 60
    new = IdentityKeyPair.generate().public
    alice.contacts.flag_key_change(bob.account_id, old, new)
    assert alice.emitted == [KeyChanged(bob.account_id, old.hex()[:16], new.hex()[:16])]
    assert alice.contacts.key_changed() == {bob.account_id}
    assert [c.key_changed for c in alice.contacts.all()] == [True]
    assert alice.contacts.safety_number(bob.account_id) not in ("", before)  # the pending key's number
    alice.contacts.set_verified(bob.account_id, True)
    assert alice.contacts.key_changed() == set()
    [view] = alice.contacts.all()
    assert view.verified and not view.key_changed
    assert alice.store.sessions.load(bob.account_id) is None  # a new session starts after the change


def test_mark_read_clears_unread(alice: Party, bob: Party) -> None:
    from client.store import MessageRecord

    alice.store.contacts.add(bob.account_id, now=alice.now)
    alice.store.messages.add(MessageRecord("m1", bob.account_id, "in", "text", alice.now, "received",
                                          body="hi"))
    assert [c.unread for c in alice.contacts.all()] == [1]
    alice.contacts.mark_read(bob.account_id)
    assert [c.unread for c in alice.contacts.all()] == [0]
