"""Test helpers: accounts that make sealed vouchers with the client's own issuer, without a profile."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from client.authority.inbox import Inbox
from client.crypto.identity import IdentityKeyPair
from client.report import Report
from client.vouchers.issuer import VoucherIssuer
from client.vouchers.voucher import PERIOD_SECONDS
from scanner.authority import AuthorityKey

__all__ = ["RECIPIENT", "SHA", "MemoryStore", "Sender", "receive"]

RECIPIENT = "q" * 52
SHA = "c3" * 32


class MemoryStore:
    """The two settings the issuer keeps (a real profile keeps them in its encrypted store)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield


class Sender:
    """One account's voucher issuer; ``account`` fixes the id (snapshots), else a fresh identity's."""

    def __init__(self, authority: AuthorityKey, threshold: int = 3, account: str | None = None) -> None:
        self.identity = IdentityKeyPair.generate()
        self.account = account or self.identity.account_id
        self.issuer = VoucherIssuer(MemoryStore(), self.account)
        self.authority, self.threshold = authority, threshold

    def report(self, n: int) -> Report:
        return Report(self.account, RECIPIENT, 1000.0 + n, "ab" * 32, 4, 3, 90, f"{n:02x}" * 32, SHA)

    def real(self, n: int, now: float = 10 * PERIOD_SECONDS) -> bytes:
        return self.issuer.seal(self.report(n), threshold=self.threshold, now=now,
                                authority_key=self.authority.public_key)

    def synthetic(self, now: float = 10 * PERIOD_SECONDS) -> bytes:
        return self.issuer.seal(None, threshold=self.threshold, now=now,
                                authority_key=self.authority.public_key)


def receive(inbox: Inbox, sender: str, envelope: bytes) -> str | None:
    """Hand one envelope to the inbox as the relay would (a fresh relay message id)."""
    return asyncio.run(inbox.receive(os.urandom(8).hex(), sender, 0.0, envelope))
