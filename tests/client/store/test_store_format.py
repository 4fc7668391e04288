"""A profile written before the store was split into repositories opens and reads the same.

``data/profile-v1.sql`` is the ``sqlite3`` dump (``Connection.iterdump``) of an unprotected schema-v1
store written by the single-class ``Store`` of issue 11: identity and prekeys from fixed seeds, two
settings, a verified contact "Bob" with his key, a session, two messages, an outbox item and a seen id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from client.crypto.identity import IdentityKeyPair
from client.store import MessageRecord, Store

DUMP = Path(__file__).parent / "data" / "profile-v1.sql"
ME, BOB = IdentityKeyPair(b"\x01" * 32), IdentityKeyPair(b"\x02" * 32)


def _restore(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(DUMP.read_text(encoding="utf-8"))
    finally:
        conn.close()


def test_a_schema_v1_profile_opens_and_reads_through_the_repositories(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    _restore(db)
    with Store.open(db, passphrase=None) as store:
        assert store.keys.load_identity() == ME
        prekeys = store.keys.load_prekeys()
        assert prekeys is not None and len(prekeys.one_time) == 2
        assert store.settings.all() == {"policy": "block", "snapshot_floor": [7, "ab" * 16]}
        bob = store.contacts.find("bob")
        assert (bob.account_id, bob.identity_key, bob.verified, bob.added_at, bob.unread) == (
            BOB.account_id, BOB.public, True, 5.0, 1)
        session = store.sessions.load(BOB.account_id)
        assert session is not None and session.account_id == BOB.account_id
        out, inbound = store.messages.conversation(BOB.account_id)
        assert (out.msg_id, out.direction, out.state) == ("msg-out-1", "out", "delivered")
        assert out.body == "hello bob"
        assert (inbound.msg_id, inbound.body, inbound.verdict) == ("msg-in-1", "hi there",
                                                                   {"outcome": "no_match", "votes": 0})
        [item] = store.outbox.pending()
        assert (item.envelope_id, item.payload, item.attempts, item.meta) == (
            "env-1", b"ciphertext", 1, {"msg_id": "msg-out-1"})
        assert store.dedupe.seen("inbound-env-1") and not store.dedupe.mark_seen("inbound-env-1")
        assert store.messages.add(MessageRecord("msg-in-2", BOB.account_id, "in", "text", 13.0, "received",
                                                body="still works"))
    with Store.open(db, passphrase=None) as store:
        assert [m.msg_id for m in store.messages.conversation(BOB.account_id)] == ["msg-out-1", "msg-in-1",
                                                                                  "msg-in-2"]
        assert store.contacts.require(BOB.account_id).unread == 2
