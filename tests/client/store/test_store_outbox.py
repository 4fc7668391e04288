"""The outbox: pending envelopes oldest first, attempt counts, acknowledgements, sealed at rest."""

from __future__ import annotations

from collections.abc import Callable

from client.store.database import Database
from client.store.outbox import OutboxRepository
from client.store.records import OutboxItem


def test_pending_attempts_and_acks(database: Database, file_bytes: Callable[[], bytes]) -> None:
    outbox = OutboxRepository(database)
    assert outbox.pending() == []
    outbox.put(OutboxItem("env-1", "peer-a", b"ciphertext-one", 1.0, meta={"msg_id": "m1"}))
    outbox.put(OutboxItem("env-2", "peer-b", b"ciphertext-two", 2.0))
    outbox.attempted("env-1")
    outbox.attempted("env-1")
    outbox.attempted("env-unknown")  # not pending: nothing happens
    first, second = outbox.pending()
    assert (first.envelope_id, first.attempts, first.meta, first.payload) == ("env-1", 2, {"msg_id": "m1"},
                                                                              b"ciphertext-one")
    assert (second.envelope_id, second.attempts, second.peer) == ("env-2", 0, "peer-b")
    assert second.created_at == 2.0
    raw = file_bytes()
    assert b"ciphertext-one" not in raw and b"env-1" not in raw and b"peer-a" not in raw

    assert outbox.ack("env-1") and not outbox.ack("env-1") and not outbox.ack("env-unknown")
    assert [i.envelope_id for i in outbox.pending()] == ["env-2"]
