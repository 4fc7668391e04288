"""The encrypted local store: unlock, nothing in clear, durability, contacts/key changes, outbox, dedupe."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from client.crypto.attachments import encrypt_image
from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.errors import (
    IdentityKeyChanged,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    UnknownContact,
    WrongPassphrase,
)
from client.session import decrypt_message, initiate_session
from client.store import MessageRecord, OutboxItem, Store
from scanner.verdict import issue_verdict

FAST = {"opslimit": 1, "memlimit": 8 * 1024 * 1024}  # weak Argon2id cost: tests only
ROOT = Path(__file__).resolve().parents[2]


def make(path: Path, passphrase: str | None = "correct horse") -> Store:
    return Store.create(path, passphrase=passphrase, **FAST)


def test_create_open_and_passphrase_errors(tmp_path: Path) -> None:
    db = tmp_path / "profile" / "store.db"
    s = make(db)
    me = IdentityKeyPair.generate()
    s.keys.save_identity(me)
    s.close()
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert Store.is_protected(db)
    with pytest.raises(WrongPassphrase):
        Store.open(db, passphrase="wrong")
    with pytest.raises(StoreLocked):
        Store.open(db, passphrase=None)
    with Store.open(db, passphrase="correct horse") as s2:
        assert s2.keys.load_identity() == me
    with pytest.raises(StoreError):
        make(db)  # never overwrite an existing profile
    with pytest.raises(StoreLocked):
        s2.keys.load_identity()  # closed


def test_no_passphrase_mode(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    make(db, None).close()
    assert not Store.is_protected(db)
    with Store.open(db, passphrase=None) as s:
        assert s.keys.load_identity() is None


def test_not_a_store_and_tampering(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreCorrupt):
        Store.open(junk, passphrase="x")
    db = tmp_path / "s.db"
    s = make(db)
    s.settings.set("policy", "block")
    s.close()
    conn = sqlite3.connect(db)
    (v,) = conn.execute("SELECT v FROM secrets WHERE kind='setting'").fetchone()
    conn.execute("UPDATE secrets SET v = ? WHERE kind='setting'", (v[:-1] + bytes([v[-1] ^ 1]),))
    conn.commit()
    conn.close()
    with Store.open(db, passphrase="correct horse") as s, pytest.raises(StoreCorrupt):
        s.settings.get("policy")


def test_stolen_file_reveals_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    s = make(db)
    me, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    s.keys.save_identity(me)
    s.keys.save_prekeys(PreKeyState.create(me, 0.0, one_time_count=2))
    s.contacts.add(bob.account_id, name="Bobby Tables", identity_key=bob.public)
    s.messages.add(MessageRecord("msg-0001", bob.account_id, "in", "text", 1.0, "received",
                                body="meet me at the secret place"))
    s.settings.set("relay", "ws://relay.example:8765")
    s.outbox.put(OutboxItem("env-0001", bob.account_id, b"ciphertext-bytes", 2.0))
    s.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (me.seed, me.public, bob.public, b"Bobby Tables", b"secret place", bob.account_id.encode(),
                   b"msg-0001", b"relay.example", b"env-0001", b"ciphertext-bytes"):
        assert secret not in raw


def test_contacts_and_key_changes(tmp_path: Path) -> None:
    s = make(tmp_path / "s.db")
    bob, bob2 = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    c = s.contacts.add(bob.account_id, name="Bob", now=5.0)
    assert c.identity_key is None and not c.verified
    s.contacts.set_identity_key(bob.account_id, bob.public)
    s.contacts.set_verified(bob.account_id)
    assert s.contacts.find("bob").verified
    assert s.contacts.find(bob.account_id.upper()).name == "Bob"
    with pytest.raises(IdentityKeyChanged):  # not Bob's key
        s.contacts.set_identity_key(bob.account_id, bob2.public)
    with pytest.raises(IdentityKeyChanged) as info:  # "Bob" now shows up with another key
        s.contacts.add(bob2.account_id, name="Bob", identity_key=bob2.public)
    assert info.value.old_key == bob.public
    assert s.contacts.by_name("bob").account_id == bob.account_id  # type: ignore[union-attr]
    s.contacts.add(bob2.account_id, name="Bob", identity_key=bob2.public, replace_name=True)
    assert s.contacts.by_name("Bob").account_id == bob2.account_id  # type: ignore[union-attr]
    assert [c.account_id for c in s.contacts.all()] == [bob.account_id, bob2.account_id]
    with pytest.raises(UnknownContact):
        s.contacts.find("nobody")
    s.contacts.remove(bob.account_id)
    assert s.contacts.get(bob.account_id) is None


def test_messages_outbox_seen_settings(tmp_path: Path) -> None:
    s = make(tmp_path / "s.db")
    peer = IdentityKeyPair.generate().account_id
    s.contacts.add(peer, name="p")
    photo = (ROOT / "samples" / "coffee.jpg").read_bytes()
    ptr = encrypt_image(photo, issue_verdict(photo, "no_match"), content_type="image/jpeg").pointer
    assert s.messages.add(MessageRecord("m1", peer, "out", "text", 1.0, "sending", body="hi"))
    assert not s.messages.add(MessageRecord("m1", peer, "out", "text", 1.0, "sending", body="dup"))
    s.messages.add(MessageRecord("m2", peer, "in", "image", 2.0, "received", attachment=ptr,
                                verdict={"outcome": "no_match", "votes": 0}))
    s.messages.add(MessageRecord("m3", peer, "in", "text", 3.0, "received", body="yo"))
    assert s.contacts.require(peer).unread == 2
    s.contacts.mark_read(peer)
    assert s.contacts.require(peer).unread == 0
    s.messages.update("m1", state="delivered")
    s.messages.update("m2", local_path="/tmp/x.jpg")
    msgs = s.messages.conversation(peer)
    assert [m.msg_id for m in msgs] == ["m1", "m2", "m3"]
    assert msgs[0].state == "delivered" and msgs[1].attachment == ptr and msgs[1].local_path == "/tmp/x.jpg"
    assert [m.msg_id for m in s.messages.conversation(peer, limit=2)] == ["m2", "m3"]
    with pytest.raises(ValueError):
        s.messages.update("m1", state="bogus")  # type: ignore[arg-type]

    s.outbox.put(OutboxItem("e1", peer, b"p1", 1.0, meta={"msg_id": "m1"}))
    s.outbox.put(OutboxItem("e2", peer, b"p2", 2.0))
    s.outbox.attempted("e1")
    assert [(i.envelope_id, i.attempts) for i in s.outbox.pending()] == [("e1", 1), ("e2", 0)]
    assert s.outbox.ack("e1") and not s.outbox.ack("e1")
    assert [i.envelope_id for i in s.outbox.pending()] == ["e2"]

    assert not s.dedupe.seen("in-1")
    assert s.dedupe.mark_seen("in-1") and not s.dedupe.mark_seen("in-1") and s.dedupe.seen("in-1")

    s.settings.set("policy", "warn")
    s.settings.set("snapshot_version", 7)
    assert s.settings.get("policy") == "warn" and s.settings.get("missing", 3) == 3
    assert s.settings.all() == {"policy": "warn", "snapshot_version": 7}


def test_sessions_survive_restart(tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "a.db", tmp_path / "b.db"
    alice_store, bob_store = make(a_path), make(b_path)
    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    bob_pk = PreKeyState.create(bob, 0.0, one_time_count=3)
    alice_store.keys.save_identity(alice)
    alice_store.keys.save_prekeys(PreKeyState.create(alice, 0.0, one_time_count=1))
    bob_store.keys.save_identity(bob)
    bob_store.keys.save_prekeys(bob_pk)
    rec = initiate_session(alice, bob_pk.bundle(bob.public, 1), account_id=bob.account_id)
    first = rec.encrypt(b"hello")
    alice_store.sessions.save(rec)
    for round_ in range(3):
        alice_store.close()
        bob_store.close()
        alice_store = Store.open(a_path, passphrase="correct horse")
        bob_store = Store.open(b_path, passphrase="correct horse")
        # Bob receives (transactionally: session + prekeys + dedupe mark together).
        pk = bob_store.keys.load_prekeys()
        assert pk is not None
        d = decrypt_message(bob, pk, bob_store.sessions.load(alice.account_id), first,
                            sender_account_id=alice.account_id)
        with bob_store.transaction():
            bob_store.sessions.save(d.record)
            bob_store.keys.save_prekeys(pk)
            bob_store.dedupe.mark_seen(f"env-{round_}")
        reply = d.record.encrypt(b"reply %d" % round_)
        bob_store.sessions.save(d.record)
        a_rec = alice_store.sessions.load(bob.account_id)
        a_pk = alice_store.keys.load_prekeys()
        assert a_rec is not None and a_pk is not None
        got = decrypt_message(alice, a_pk, a_rec, reply, sender_account_id=bob.account_id)
        assert got.plaintext == b"reply %d" % round_
        first = got.record.encrypt(b"next %d" % round_)
        alice_store.sessions.save(got.record)
    assert 1 not in (bob_store.keys.load_prekeys() or PreKeyState()).one_time


def test_crash_mid_transaction_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    s = make(db)
    s.outbox.put(OutboxItem("acked-before", "peer", b"1", 1.0))
    s.close()
    script = f"""
import os
from client.store import Store, OutboxItem
s = Store.open({str(db)!r}, passphrase="correct horse")
s.outbox.put(OutboxItem("committed", "peer", b"2", 2.0))
with s.transaction():
    s.outbox.put(OutboxItem("half-written", "peer", b"3", 3.0))
    s.outbox.ack("acked-before")
    os._exit(9)  # crash before COMMIT
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env)
    assert proc.returncode == 9
    with Store.open(db, passphrase="correct horse") as s:
        assert [i.envelope_id for i in s.outbox.pending()] == ["acked-before", "committed"]


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    s = make(tmp_path / "s.db")
    with pytest.raises(RuntimeError), s.transaction():
        s.settings.set("policy", "off")
        raise RuntimeError("boom")
    assert s.settings.get("policy") is None


def test_memory_store() -> None:
    s = Store.create(":memory:", passphrase=None)
    s.settings.set("a", 1)
    assert s.settings.get("a") == 1


def test_change_passphrase(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    s = make(db)
    s.settings.set("policy", "report")
    s.change_passphrase("new one", **FAST)
    s.close()
    with pytest.raises(WrongPassphrase):
        Store.open(db, passphrase="correct horse")
    with Store.open(db, passphrase="new one") as s:
        assert s.settings.get("policy") == "report"
        s.change_passphrase(None)
    assert not Store.is_protected(db)
    with Store.open(db, passphrase=None) as s:
        assert s.settings.get("policy") == "report"
