"""The Boss wired to the real parts: two cores, a real relay on loopback, real SQLite stores."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from client.core import Core, ProfileInUse, format_invite, parse_contact_ref
from client.demo.world import AuthorityIdentity, make_profile, start_relay
from client.interfaces import DeliveryChanged, MessageReceived
from client.locations import Profile
from scanner.errors import SnapshotInvalid
from tests.client.corekit import Pair, pair, relay_rows, run, until

REPO = Path(__file__).resolve().parents[2]
COFFEE = REPO / "samples" / "coffee.jpg"












def test_text_round_trip_and_delivery_states(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        bob_id = p.bob.account_id
        out = await p.alice.send_text(bob_id, "hello bob")
        assert out.status == "sent" and out.message is not None and out.message.state == "sending"
        await until(lambda: any(isinstance(e, MessageReceived) for e in p.events["bob"]))
        got = next(e for e in p.events["bob"] if isinstance(e, MessageReceived)).message
        assert (got.text, got.peer, got.direction) == ("hello bob", p.alice.account_id, "in")
        await until(lambda: any(isinstance(e, DeliveryChanged) and e.state == "delivered"
                                for e in p.events["alice"]))
        assert p.alice.messages(bob_id)[-1].state == "delivered"
        assert [c.unread for c in p.bob.contacts()] == [1]
        assert p.alice.safety_number(bob_id) == p.bob.safety_number(p.alice.account_id) != ""

    run(tmp_path, body)


def test_image_round_trip_order_of_operations(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        p.trace.clear()
        out = await p.alice.send_image(p.bob.account_id, COFFEE, confirmed=True)
        assert out.status == "sent", out
        steps = [s for s in p.trace if s.startswith(("pipeline.", "session.", "net.upload", "net.send"))]
        assert steps == ["pipeline.read", "pipeline.hash", "pipeline.match", "pipeline.policy",
                         "pipeline.encrypt", "session.encrypt_image", "pipeline.upload", "net.upload_blob",
                         "pipeline.send", "session.encrypt", "net.send"]
        await until(lambda: any(isinstance(e, MessageReceived) for e in p.events["bob"]))
        got = next(e for e in p.events["bob"] if isinstance(e, MessageReceived)).message
        assert got.kind == "image" and got.path and p.bob.image_bytes(got.id) == COFFEE.read_bytes()
        assert COFFEE.read_bytes()[:4096] not in Path(got.path).read_bytes()  # sealed at rest

    # no snapshot is published here: under warn the unscanned image needs confirmation, then goes
    run(tmp_path, body, policy="warn")


def test_block_without_snapshot_nothing_leaves(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        me = p.alice.account_id
        before = relay_rows(p.relay.db, me)
        out = await p.alice.send_image(p.bob.account_id, COFFEE)
        assert out.status == "blocked" and out.scan is not None and out.scan.outcome == "skipped"
        await asyncio.sleep(0.3)
        assert relay_rows(p.relay.db, me) == before
        assert p.alice.messages(p.bob.account_id) == []

    run(tmp_path, body, policy="block")


def test_profile_is_locked_and_contact_refs(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        with pytest.raises(ProfileInUse):
            Core.open(Profile(tmp_path / "alice"))
        assert parse_contact_ref(format_invite(p.bob.account_id, "bob")) == (p.bob.account_id, "bob")
        dashed = "-".join(p.bob.account_id[i:i + 4] for i in range(0, 32, 4)).upper()
        assert parse_contact_ref(dashed) == (p.bob.account_id, "")

    run(tmp_path, body)


def test_report_is_readable_only_by_the_authority(tmp_path: Path) -> None:
    from client.demo.world import DEMO_BANKED, build_snapshot, sample_images
    from client.net import fetch_mailbox, publish_snapshot
    from client.report import open_report

    async def main() -> None:
        authority = AuthorityIdentity.generate()
        relay = await start_relay(tmp_path / "relay.sqlite", authorities=[authority.public_key])
        banked = [x for x in sample_images() if x.name in DEMO_BANKED]
        await publish_snapshot(relay.url, authority.seed, build_snapshot(banked, authority), 1)
        alice = make_profile(tmp_path, "alice", relay=relay.url, authority=authority, policy="report")
        bob = make_profile(tmp_path, "bob", relay=relay.url, authority=authority, policy="block")
        bob.settings = replace(bob.settings, scan_received=True)
        try:
            await alice.add_contact(bob.account_id, "bob")
            await bob.add_contact(alice.account_id, "alice")
            assert await alice.publish_now() and await bob.publish_now()
            await until(lambda: alice.slot.current is not None and bob.slot.current is not None)
            out = await alice.send_image(bob.account_id, banked[0])
            assert out.status == "reported" and out.scan is not None and out.scan.outcome == "match"
            await until(lambda: not alice.store.outbox.pending())
            mail = await fetch_mailbox(relay.url, authority.seed)
            assert len(mail) == 1 and mail[0].sender == alice.account_id
            report = open_report(mail[0].env, authority.seed)
            assert report.recipient == bob.account_id and report.votes == out.scan.votes
            assert report.snapshot_fingerprint == alice.slot.current.fingerprint  # type: ignore[union-attr]
            assert bob.messages(alice.account_id) == []
            # research setting: bob scans what he receives (alice switches to off and sends it)
            await alice.set_policy("off")
            sent = await alice.send_image(bob.account_id, banked[0])
            assert sent.status == "sent"
            await until(lambda: any(m.kind == "image" for m in bob.messages(alice.account_id)))
            got = next(m for m in bob.messages(alice.account_id) if m.kind == "image")
            assert got.verdict == "match" and got.votes and got.votes >= 1
        finally:
            await alice.stop()
            await bob.stop()
            await relay.stop()

    asyncio.run(main())


def test_snapshot_updates_swap_and_bad_ones_are_refused(tmp_path: Path) -> None:
    from client.demo.world import DEMO_BANKED, build_snapshot, sample_images
    from client.interfaces import SnapshotChanged
    from client.net import publish_snapshot

    async def body(p: Pair) -> None:
        banked = [x for x in sample_images() if x.name in DEMO_BANKED]
        seed = p.authority.seed
        await publish_snapshot(p.relay.url, seed, build_snapshot(banked[:1], p.authority), 1)
        await until(lambda: p.alice.slot.current is not None and p.alice.slot.current.version == 1)
        await publish_snapshot(p.relay.url, seed, build_snapshot(banked, p.authority, version=2), 2)
        await until(lambda: p.alice.slot.current is not None and p.alice.slot.current.version == 2)
        assert any(isinstance(e, SnapshotChanged) for e in p.events["alice"])
        good = p.alice.slot.current
        # a snapshot signed by another key is refused and the last good one stays in use
        rogue = AuthorityIdentity.generate()
        with pytest.raises(SnapshotInvalid):
            p.alice.install_snapshot(build_snapshot(banked, rogue, version=3))
        assert p.alice.slot.current is good
        # so is a rollback
        with pytest.raises(SnapshotInvalid):
            p.alice.install_snapshot(build_snapshot(banked, p.authority, version=1))
        assert p.alice.slot.current is good and p.alice.scanner_status().version == 2

    async def main() -> None:
        p = await pair(tmp_path, "block")
        try:
            await body(p)
        finally:
            await p.close()

    asyncio.run(main())
