"""Contacts: order, case-insensitive names, trust on first use, verified mark, unread counts, removal."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.crypto.identity import IdentityKeyPair
from client.errors import IdentityKeyChanged, UnknownContact
from client.store.contacts import ContactRepository
from client.store.database import Database
from client.store.sessions import SessionRepository


@pytest.fixture
def contacts(database: Database) -> ContactRepository:
    return ContactRepository(database, SessionRepository(database))


def test_order_names_and_renames(contacts: ContactRepository, file_bytes: Callable[[], bytes]) -> None:
    ann, ben, cy = (IdentityKeyPair.generate().account_id for _ in range(3))
    contacts.add(ben, name="Ben", now=2.0)
    contacts.add(ann, now=1.0)
    contacts.add(cy, name="Cy")
    contacts.add(ben, name="Benjamin")  # a rename keeps the place in the list
    assert [c.account_id for c in contacts.all()] == [ben, ann, cy]
    assert contacts.by_name("BENJAMIN").account_id == ben  # type: ignore[union-attr]
    assert contacts.by_name("Ben") is None
    assert contacts.get(ann).label == ann and contacts.get(ben).added_at == 2.0  # type: ignore[union-attr]
    assert contacts.find("cy").account_id == cy and contacts.find(ann.upper()).account_id == ann
    with pytest.raises(UnknownContact):
        contacts.find("nobody")
    with pytest.raises(UnknownContact):
        contacts.require(IdentityKeyPair.generate().account_id)
    raw = file_bytes()
    assert b"Benjamin" not in raw and ben.encode() not in raw


def test_trust_on_first_use_and_the_verified_mark(contacts: ContactRepository) -> None:
    bob, other = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    with pytest.raises(IdentityKeyChanged):  # a key that is not this account's
        contacts.add(bob.account_id, identity_key=other.public)
    assert contacts.get(bob.account_id) is None  # nothing written
    contacts.add(bob.account_id, name="bob")
    with pytest.raises(UnknownContact):
        contacts.set_identity_key(other.account_id, other.public)
    assert contacts.set_identity_key(bob.account_id, bob.public).identity_key == bob.public
    assert contacts.set_verified(bob.account_id).verified
    assert contacts.set_identity_key(bob.account_id, bob.public, accept_change=True).verified  # same key
    assert not contacts.set_verified(bob.account_id, False).verified


def test_unread_counts_and_removal_drops_the_session(database: Database, contacts: ContactRepository) -> None:
    peer = IdentityKeyPair.generate().account_id
    contacts.add(peer)
    contacts.count_unread(peer)
    contacts.count_unread(peer)
    contacts.count_unread(IdentityKeyPair.generate().account_id)  # no such contact: nothing happens
    assert contacts.require(peer).unread == 2 and len(contacts.all()) == 1
    contacts.mark_read(peer)
    assert contacts.require(peer).unread == 0
    database.execute("INSERT INTO sessions (peer, v) VALUES (?, ?)", (database.mac("peer", peer), b"x"))
    contacts.remove(peer)
    assert contacts.get(peer) is None and database.all("SELECT COUNT(*) FROM sessions") == [(0,)]
