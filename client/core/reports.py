"""Reports: sealed abuse reports and threshold vouchers queued to the authority's mailbox.

Under the ``report`` policy a matching image is not sent; :meth:`Reports.send_report` seals a
report to the pinned authority key (the relay cannot read it) or, with ``report-threshold`` > 1, a
threshold voucher the authority can open only with enough of them (``client.vouchers``). Under
threshold reporting a fraction of clean sends also queue a *synthetic* voucher
(:meth:`Reports.synthetic_voucher`), and a voucher may wait a random delay so its timing does not
tie it to the send. Both go through the persisted outbox, like messages.

Collaborators: the encrypted store, the voucher issuer, the settings, a clock, a trace callback and
``kick`` (wake the network link). No network: tests read the queued outbox rows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.core.shared import Shared
from client.policy import ScanOutcome
from client.report import Report, authority_mailbox, seal_report
from client.store import OutboxItem, Store
from client.vouchers.issuer import VoucherIssuer, voucher_delay, wants_synthetic
from scanner.hashers.base import HashResult

__all__ = ["REPORT", "VOUCHER", "Reports"]

REPORT, VOUCHER = "report", "voucher"
"""Outbox kinds of the envelopes to the authority: a sealed report (t = 1) or a threshold voucher."""


@dataclass(eq=False, repr=False)
class Reports:
    """Reports and vouchers to the authority, persisted in the outbox before they are sent."""

    store: Store
    shared: Shared
    vouchers: VoucherIssuer
    """Seals threshold vouchers for this account (``client.vouchers``); its ``account`` reports."""
    kick: Callable[[], None]
    """Wakes the network link's flusher."""

    def send_report(self, peer: str, data: bytes, scan: ScanOutcome, hashed: HashResult | None) -> None:
        """Seal a report to the authority and queue it to the authority's mailbox (relay cannot read it)."""
        settings = self.shared.settings()
        key = bytes.fromhex(settings.authority_pubkey)
        report = Report(reporter=self.vouchers.account, recipient=peer, created_at=self.shared.clock(),
                        snapshot_fingerprint=scan.snapshot_fingerprint,
                        snapshot_version=scan.snapshot_version,
                        votes=scan.votes, quality=scan.quality, pdq_hash=hashed.hex if hashed else None,
                        image_sha256=hashlib.sha256(data).hexdigest())
        threshold = settings.report_threshold
        if threshold <= 1:
            self.queue(key, lambda: seal_report(report, key), REPORT)
        else:  # threshold reporting: a voucher the authority can open only with t of them (client.vouchers)
            self.queue(key, lambda: self.vouchers.seal(report, threshold=threshold,
                                                       now=self.shared.clock(), authority_key=key),
                       VOUCHER)
        self.shared.trace("net.send_report")
        self.kick()

    async def synthetic_voucher(self, scan: ScanOutcome) -> None:
        """Under threshold reporting, a fraction of non-matching images send a synthetic voucher."""
        s = self.shared.settings()
        if s.authority_pubkey and wants_synthetic(s.policy, s.report_threshold, s.synthetic_vouchers):
            key = bytes.fromhex(s.authority_pubkey)
            self.queue(key, lambda: self.vouchers.seal(None, threshold=s.report_threshold,
                                                       now=self.shared.clock(), authority_key=key),
                       VOUCHER)
            self.shared.trace("net.send_voucher")
            self.kick()

    def queue(self, key: bytes, envelope: Callable[[], bytes], kind: str) -> None:
        """Put one sealed envelope for the authority ``key`` in the outbox (a voucher maybe delayed)."""
        meta: dict[str, Any] = {"kind": kind}
        delay = self.shared.settings().voucher_delay
        if kind == VOUCHER and delay > 0:  # timing must not tie it to this send
            meta["not_before"] = self.shared.clock() + voucher_delay(delay)
        with self.store.transaction():  # a voucher's counter step and its outbox entry commit together
            self.store.outbox.put(OutboxItem(os.urandom(16).hex(), authority_mailbox(key), envelope(),
                                             self.shared.clock(), 0, meta))
