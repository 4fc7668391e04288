"""The history: idempotent append, unread counts for inbound messages, updates, order, sealed at rest."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.errors import StoreError
from client.store.contacts import ContactRepository
from client.store.database import Database
from client.store.messages import MessageRepository
from client.store.records import MessageRecord
from client.store.sessions import SessionRepository

PEER = "p" * 52
OTHER = "q" * 52


@pytest.fixture
def contacts(database: Database) -> ContactRepository:
    return ContactRepository(database, SessionRepository(database))


@pytest.fixture
def messages(database: Database, contacts: ContactRepository) -> MessageRepository:
    return MessageRepository(database, contacts)


def _text(msg_id: str, peer: str = PEER, direction: str = "in", body: str = "hello") -> MessageRecord:
    state = "received" if direction == "in" else "sending"
    return MessageRecord(msg_id, peer, direction, "text", 1.0, state, body=body)  # type: ignore[arg-type]


def test_append_is_idempotent_and_counts_unread(messages: MessageRepository, contacts: ContactRepository,
                                                file_bytes: Callable[[], bytes]) -> None:
    contacts.add(PEER)
    assert messages.add(_text("m1", body="the secret place"))
    assert not messages.add(_text("m1", body="a replay"))
    assert messages.add(_text("message-id-0042"))
    assert messages.add(_text("m2", direction="out"))
    assert messages.add(_text("x1", peer=OTHER))  # not a contact: stored, no unread count anywhere
    assert contacts.require(PEER).unread == 2
    assert messages.get("m1").body == "the secret place"  # type: ignore[union-attr]
    assert messages.get("nope") is None
    raw = file_bytes()
    assert b"secret place" not in raw and b"message-id-0042" not in raw and PEER.encode() not in raw
    with pytest.raises(ValueError):
        messages.add(MessageRecord("m3", PEER, "in", "text", 1.0, "bogus"))  # type: ignore[arg-type]
    assert messages.get("m3") is None


def test_conversations_are_separate_ordered_and_bounded(messages: MessageRepository) -> None:
    for i in range(5):
        messages.add(_text(f"a{i}"))
        messages.add(_text(f"b{i}", peer=OTHER))
    assert [m.msg_id for m in messages.conversation(PEER)] == ["a0", "a1", "a2", "a3", "a4"]
    assert [m.msg_id for m in messages.conversation(OTHER, limit=2)] == ["b3", "b4"]
    assert messages.conversation("r" * 52) == []


def test_updates_change_only_what_is_given(messages: MessageRepository) -> None:
    messages.add(_text("m1", direction="out"))
    messages.update("m1", verdict={"outcome": "no_match", "votes": 0})
    updated = messages.update("m1", state="delivered")
    assert updated.state == "delivered" and updated.verdict == {"outcome": "no_match", "votes": 0}
    assert messages.get("m1") == updated and updated.body == "hello"
    with pytest.raises(StoreError):
        messages.update("missing", state="sent")
    with pytest.raises(ValueError):
        messages.update("m1", state="lost")  # type: ignore[arg-type]
    assert messages.get("m1").state == "delivered"  # type: ignore[union-attr]
