"""``client.core.reports.Reports`` alone: sealed reports and vouchers land in the outbox, nothing else."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

from client.demo.world import AuthorityIdentity
from client.policy import ScanOutcome
from client.report import authority_mailbox
from client.vouchers.voucher import is_voucher_envelope
from scanner.hashers.base import HashResult
from tests.client.core.partykit import Party

MATCH = ScanOutcome("match", votes=4, min_votes=2, quality=90, snapshot_version=3,
                    snapshot_fingerprint="ab" * 32)


def _with_authority(party: Party, **changes: object) -> bytes:
    authority = AuthorityIdentity.generate()
    party.settings = replace(party.settings, authority_pubkey=authority.public_hex, **changes)  # type: ignore[arg-type]
    return bytes.fromhex(authority.public_hex)


def test_a_report_is_sealed_to_the_authority_mailbox(alice: Party, bob: Party) -> None:
    key = _with_authority(alice, policy="report")
    data = b"image bytes"
    alice.reports.send_report(bob.account_id, data, MATCH, HashResult("pdq", 256, bytes(32), 90))
    [item] = alice.store.outbox.pending()
    assert item.peer == authority_mailbox(key) and item.meta == {"kind": "report"}
    assert data not in item.payload  # sealed
    assert hashlib.sha256(data).hexdigest().encode() not in item.payload
    assert alice.events == ["net.send_report", "link.kick"]


def test_threshold_reporting_queues_a_delayed_voucher(alice: Party, bob: Party) -> None:
    _with_authority(alice, policy="report", report_threshold=3, voucher_delay=60.0)
    alice.reports.send_report(bob.account_id, b"x", MATCH, None)
    [item] = alice.store.outbox.pending()
    assert item.meta["kind"] == "voucher" and is_voucher_envelope(item.payload)
    assert item.meta["not_before"] >= alice.now


def test_synthetic_vouchers_only_under_threshold_reporting(alice: Party) -> None:
    _with_authority(alice, policy="report", report_threshold=1, synthetic_vouchers=1.0)
    asyncio.run(alice.reports.synthetic_voucher(MATCH))
    assert alice.store.outbox.pending() == []  # t = 1: plain reports, no cover traffic
    _with_authority(alice, policy="report", report_threshold=3, synthetic_vouchers=1.0)
    asyncio.run(alice.reports.synthetic_voucher(MATCH))
    [item] = alice.store.outbox.pending()
    assert item.meta == {"kind": "voucher"} and is_voucher_envelope(item.payload)
    assert alice.events == ["net.send_voucher", "link.kick"]


def test_without_an_authority_key_no_synthetic_voucher(alice: Party, tmp_path: Path) -> None:
    alice.settings = replace(alice.settings, policy="report", report_threshold=3, synthetic_vouchers=1.0)
    asyncio.run(alice.reports.synthetic_voucher(MATCH))
    assert alice.store.outbox.pending() == []
