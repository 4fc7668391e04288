"""Client side of threshold reporting: voucher secret and counter in the profile store, sealed vouchers out.

The only state is two store settings (the store is encrypted at rest): ``voucher_secret`` (32 random
bytes, made on first use, never leaves the device) and ``voucher_counter`` (grows by one per voucher,
real or synthetic, so share indices never repeat). The caller runs :meth:`VoucherIssuer.seal` inside
the same store transaction as the outbox write, so a crash cannot hand out one counter value twice
(and a voucher whose counter was rolled back was never queued).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any, Protocol

import cbor2

from client.report import Report
from client.vouchers.voucher import (
    Random,
    VoucherError,
    derive_period_key,
    make_synthetic_voucher,
    make_voucher,
    period_of,
    seal_voucher,
    share_index,
)

__all__ = ["SECRET_SETTING", "VoucherIssuer", "report_body", "report_from_body", "voucher_delay",
           "wants_synthetic"]

SECRET_SETTING = "voucher_secret"
COUNTER_SETTING = "voucher_counter"


class SettingsStore(Protocol):
    """Where the issuer keeps its secret and counter (a profile's ``store.settings``)."""

    def get(self, name: str, default: Any = None) -> Any: ...
    def set(self, name: str, value: Any) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...


def wants_synthetic(policy: str, threshold: int, rate: float,
                    draw: Callable[[], float] = lambda: secrets.randbelow(2**53) / 2**53) -> bool:
    """Whether a non-matching image sends a synthetic voucher (policy ``report``, t > 1, chance ``rate``)."""
    return policy == "report" and threshold > 1 and rate > 0 and draw() < rate


def voucher_delay(mean: float, draw: Callable[[], float] = lambda: secrets.randbelow(2**53) / 2**53) -> float:
    """Seconds to hold a voucher: exponential with ``mean`` (memoryless: the wait hides the send)."""
    if mean <= 0:
        return 0.0
    return -mean * math.log1p(-draw())


def report_body(report: Report) -> bytes:
    """The voucher payload of a report (CBOR map, as in a sealed report)."""
    return bytes(cbor2.dumps(asdict(report)))


def report_from_body(body: bytes) -> Report:
    """Authority side: the report inside an opened voucher (raise VoucherError if it is not one)."""
    try:
        data = cbor2.loads(body)
        if not isinstance(data, dict):
            raise TypeError("not a map")
        return Report(**data)
    except (cbor2.CBORDecodeError, TypeError, ValueError):
        raise VoucherError("the opened voucher does not hold a report") from None


class VoucherIssuer:
    """Makes the sealed vouchers of one account (real for a match, synthetic for a non-match)."""

    def __init__(self, store: SettingsStore, account: str, *, rand: Random = os.urandom) -> None:
        self.store = store
        self.account = account
        self.rand = rand

    def _secret(self) -> bytes:
        hexed = self.store.get(SECRET_SETTING)
        if isinstance(hexed, str) and len(hexed) == 64:
            return bytes.fromhex(hexed)
        secret = self.rand(32)
        self.store.set(SECRET_SETTING, secret.hex())
        return secret

    def _next_counter(self) -> int:
        counter = int(self.store.get(COUNTER_SETTING, 0))
        self.store.set(COUNTER_SETTING, counter + 1)
        return counter

    def seal(self, report: Report | None, *, threshold: int, now: float, authority_key: bytes) -> bytes:
        """A voucher sealed to the authority: real when ``report`` is given, synthetic when None."""
        with self.store.transaction():
            secret = self._secret()
            period = period_of(now)
            key = derive_period_key(secret, self.account, period, threshold)
            x = share_index(secret, self.account, period, self._next_counter())
            if report is None:
                voucher = make_synthetic_voucher(key, x, rand=self.rand)
            else:
                voucher = make_voucher(key, x, report_body(report), rand=self.rand)
            return seal_voucher(voucher, authority_key)
