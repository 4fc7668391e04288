"""``client.core.outbox.Outbox`` alone: due envelopes, delivery states from the relay's answers."""

from __future__ import annotations

import asyncio

from client.interfaces import DeliveryChanged
from client.store import MessageRecord, OutboxItem
from tests.client.core.partykit import Party


def _queue(party: Party, peer: str, msg_id: str, *, not_before: float | None = None) -> None:
    party.store.contacts.add(peer, now=party.now)
    party.store.messages.add(MessageRecord(msg_id, peer, "out", "text", party.now, "sending", body="x"))
    meta: dict[str, object] = {"kind": "text", "msg_id": msg_id}
    if not_before is not None:
        meta["not_before"] = not_before
    party.store.outbox.put(OutboxItem(f"env-{msg_id}", peer, b"payload", party.now, 0, meta))


def test_acknowledged_marks_sent(alice: Party, bob: Party) -> None:
    _queue(alice, bob.account_id, "m1")
    [pending] = alice.outbox.pending()
    assert (pending.envelope_id, pending.peer, pending.payload) == ("env-m1", bob.account_id, b"payload")
    alice.outbox.acknowledged("env-m1", "srv1", alice.now)
    assert alice.store.outbox.pending() == []
    assert alice.emitted == [DeliveryChanged("m1", bob.account_id, "sent")]
    assert alice.messages.get("m1").state == "sent"  # type: ignore[union-attr]
    assert alice.events == ["net.acked"]


def test_rejected_marks_failed_and_waiting_marks_waiting(alice: Party, bob: Party) -> None:
    _queue(alice, bob.account_id, "m1")
    _queue(alice, bob.account_id, "m2")
    alice.outbox.pending()
    alice.outbox.waiting("env-m2", "quota_exceeded")
    alice.outbox.rejected("env-m1", "too_large")
    assert alice.emitted == [DeliveryChanged("m2", bob.account_id, "waiting"),
                             DeliveryChanged("m1", bob.account_id, "failed")]
    assert [i.envelope_id for i in alice.store.outbox.pending()] == ["env-m2"]  # waiting stays queued


def test_delayed_envelope_waits_then_a_timer_kicks_the_link(alice: Party, bob: Party) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        _queue(alice, bob.account_id, "m1", not_before=alice.now + 0.05)
        assert alice.outbox.due() == []
        assert alice.outbox.due() == []  # one timer per envelope, not one per look
        await asyncio.sleep(0.3)
        assert alice.events.count("link.kick") == 1
        alice.now += 1
        assert [i.envelope_id for i in alice.outbox.due()] == ["env-m1"]
        assert loop.is_running()

    asyncio.run(main())


def test_track_links_an_envelope_to_its_message(alice: Party, bob: Party) -> None:
    _queue(alice, bob.account_id, "m1")
    alice.outbox.track("env-m1", "m1")
    alice.outbox.acknowledged("env-m1", "srv", alice.now)
    assert alice.emitted == [DeliveryChanged("m1", bob.account_id, "sent")]
