"""Threshold reporting through the real client: vouchers leave through a real relay, the authority's book
opens none below t and all at t; synthetic vouchers from clean sends look the same and are dropped."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from client.demo.world import (
    DEMO_BANKED,
    AuthorityIdentity,
    build_snapshot,
    make_profile,
    sample_images,
    start_relay,
)
from client.net import fetch_mailbox, publish_snapshot
from client.report import open_report
from client.vouchers.book import VoucherBook
from client.vouchers.issuer import SECRET_SETTING, report_from_body
from client.vouchers.voucher import is_voucher_envelope, open_voucher
from tests.client.corekit import until


def test_vouchers_open_only_at_the_threshold(tmp_path: Path) -> None:
    async def main() -> None:
        authority = AuthorityIdentity.generate()
        relay = await start_relay(tmp_path / "relay.sqlite", authorities=[authority.public_key])
        images = sample_images()
        banked = [x for x in images if x.name in DEMO_BANKED]
        clean = [x for x in images if x.name not in DEMO_BANKED]
        await publish_snapshot(relay.url, authority.seed, build_snapshot(banked, authority), 1)
        alice = make_profile(tmp_path, "alice", relay=relay.url, authority=authority, policy="report")
        bob = make_profile(tmp_path, "bob", relay=relay.url, authority=authority, policy="block")
        alice.settings = replace(alice.settings, report_threshold=3, synthetic_vouchers=1.0)
        book = VoucherBook()
        try:
            await alice.add_contact(bob.account_id, "bob")
            assert await alice.publish_now() and await bob.publish_now()
            await until(lambda: alice.slot.current is not None)

            async def drain() -> list[bytes]:
                await until(lambda: not alice.store.outbox.pending())
                return [m.env for m in await fetch_mailbox(relay.url, authority.seed)]

            # two matches and two clean images (each clean one sends a synthetic voucher at rate 1.0)
            for path in (banked[0], clean[0], banked[1], clean[1]):
                out = await alice.send_image(bob.account_id, path)
                assert out.status == ("reported" if path in banked else "sent")
                if path in banked:  # the sender is told what really leaves
                    assert out.decision is not None and "voucher" in out.decision.explanation
                    assert "holds 3 from this account" in out.decision.explanation
            mail = await drain()
            assert len(mail) == 4 and all(is_voucher_envelope(e) for e in mail)
            assert len({len(e) for e in mail}) == 1, "real and synthetic vouchers differ in size"
            outcomes = [book.add(open_voucher(e, authority.seed), sender=alice.account_id) for e in mail]
            assert all(o.status == "held" for o in outcomes)
            [status] = book.status()
            assert (status.vouchers, status.threshold, status.opened) == (4, 3, False)

            # the third match opens all three reports; the synthetic ones are dropped
            assert (await alice.send_image(bob.account_id, banked[2])).status == "reported"
            [env] = await drain()
            final = book.add(open_voucher(env, authority.seed), sender=alice.account_id)
            assert final.status == "opened" and len(final.dropped) == 2
            reports = [report_from_body(o.body) for o in final.opened]
            assert len(reports) == 3 and {r.reporter for r in reports} == {alice.account_id}
            assert all(r.recipient == bob.account_id and r.votes >= 1 for r in reports)
            assert alice.store.settings.get(SECRET_SETTING) not in (None, "")
            shown = alice.describe()
            assert (shown["report_threshold"], shown["synthetic_vouchers"]) == (3, 1.0)
            assert SECRET_SETTING not in shown and alice.store.settings.get(SECRET_SETTING) not in str(shown)

            # threshold 1 (the default) keeps today's readable report
            alice.settings = replace(alice.settings, report_threshold=1)
            assert (await alice.send_image(bob.account_id, banked[0])).status == "reported"
            [env] = await drain()
            assert open_report(env, authority.seed).reporter == alice.account_id
        finally:
            await alice.stop()
            await bob.stop()
            await relay.stop()

    asyncio.run(main())


def test_delayed_vouchers_wait_in_the_outbox_until_their_time(tmp_path: Path) -> None:
    async def main() -> None:
        authority = AuthorityIdentity.generate()
        relay = await start_relay(tmp_path / "relay.sqlite", authorities=[authority.public_key])
        banked = [x for x in sample_images() if x.name in DEMO_BANKED]
        await publish_snapshot(relay.url, authority.seed, build_snapshot(banked, authority), 1)
        alice = make_profile(tmp_path, "alice", relay=relay.url, authority=authority, policy="report")
        bob = make_profile(tmp_path, "bob", relay=relay.url, authority=authority, policy="block")
        alice.settings = replace(alice.settings, report_threshold=3, voucher_delay=3600.0)
        now = [time.time()]  # frozen: the voucher never comes due by itself
        alice.clock = lambda: now[0]
        try:
            await alice.add_contact(bob.account_id, "bob")
            assert await alice.publish_now() and await bob.publish_now()
            await until(lambda: alice.slot.current is not None)
            assert (await alice.send_image(bob.account_id, banked[0])).status == "reported"
            [item] = alice.store.outbox.pending()
            assert item.meta["kind"] == "voucher" and item.meta["not_before"] > now[0]
            assert alice.outbox_due() == [] and await alice.wait_idle(quiet=0.2, timeout=10)
            assert await fetch_mailbox(relay.url, authority.seed) == []  # nothing left at send time
            now[0] = item.meta["not_before"] + 1  # its time has come
            alice.net.kick()
            await until(lambda: not alice.store.outbox.pending())
            [mail] = await fetch_mailbox(relay.url, authority.seed)
            assert is_voucher_envelope(mail.env)
        finally:
            await alice.stop()
            await bob.stop()
            await relay.stop()

    asyncio.run(main())


def test_voucher_delay_is_exponential_and_bounded_in_settings() -> None:
    from client.config import ConfigError, Settings
    from client.vouchers.issuer import voucher_delay

    assert voucher_delay(0.0) == 0.0
    assert voucher_delay(100.0, lambda: 0.5) == pytest.approx(100.0 * 0.6931471805599453)
    draws = [voucher_delay(10.0) for _ in range(4000)]
    assert min(draws) >= 0 and 9.0 < sum(draws) / len(draws) < 11.0  # mean 10, sd of the mean 0.16
    with pytest.raises(ConfigError, match="voucher_delay"):
        Settings(voucher_delay=8 * 86_400).validate()
