"""Safety vouchers and the authority's voucher book: the threshold holds, periods never mix, replays
and forgeries are refused, synthetic vouchers look like real ones and are dropped once the key is known."""

from __future__ import annotations

import contextlib
import dataclasses
import random

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.vouchers.book import VoucherBook, VoucherRefused
from client.vouchers.shamir import PRIME, combine
from client.vouchers.voucher import (
    PAYLOAD_PLAIN_BYTES,
    Voucher,
    VoucherError,
    decode_voucher,
    derive_period_key,
    encode_voucher,
    make_synthetic_voucher,
    make_voucher,
    open_payload,
    open_voucher,
    period_of,
    seal_voucher,
    share_index,
)

SECRET = bytes(range(32))
ACCOUNT = "a" * 52


class Client:
    """A client's voucher state: the secret, its account and the growing counter."""

    def __init__(self, secret: bytes = SECRET, account: str = ACCOUNT, threshold: int = 3) -> None:
        self.secret, self.account, self.threshold = secret, account, threshold
        self.counter = 0

    def _x(self, period: int) -> int:
        x = share_index(self.secret, self.account, period, self.counter)
        self.counter += 1
        return x

    def real(self, body: bytes, period: int = 7) -> Voucher:
        key = derive_period_key(self.secret, self.account, period, self.threshold)
        return make_voucher(key, self._x(period), body)

    def synthetic(self, period: int = 7) -> Voucher:
        key = derive_period_key(self.secret, self.account, period, self.threshold)
        return make_synthetic_voucher(key, self._x(period))


def _bodies(book_outcomes: list) -> list[bytes]:  # type: ignore[type-arg]
    return [o.body for out in book_outcomes for o in out.opened]


def test_t_minus_one_vouchers_open_nothing_and_t_open_all() -> None:
    client, book = Client(threshold=3), VoucherBook()
    first = [book.add(client.real(f"report {i}".encode())) for i in range(2)]
    assert [o.status for o in first] == ["held", "held"]
    assert _bodies(first) == []
    [status] = book.status()
    assert (status.vouchers, status.threshold, status.opened) == (2, 3, False)
    third = book.add(client.real(b"report 2"))
    assert third.status == "opened"
    assert sorted(o.body for o in third.opened) == [b"report 0", b"report 1", b"report 2"]
    later = book.add(client.real(b"report 3"))
    assert later.status == "opened" and [o.body for o in later.opened] == [b"report 3"]
    [status] = book.status()
    assert (status.vouchers, status.opened, status.opened_vouchers) == (4, True, 4)


def test_threshold_one_opens_at_once() -> None:
    book = VoucherBook()
    out = book.add(Client(threshold=1).real(b"only"))
    assert out.status == "opened" and out.opened[0].body == b"only"


def test_two_periods_never_combine() -> None:
    client, book = Client(threshold=3), VoucherBook()
    outcomes = [book.add(client.real(b"p7", period=7)) for _ in range(2)]
    outcomes += [book.add(client.real(b"p8", period=8)) for _ in range(2)]
    assert all(o.status == "held" for o in outcomes)
    assert [(s.period, s.vouchers, s.opened) for s in book.status()] == [(7, 2, False), (8, 2, False)]
    # even combined by hand, shares of two periods give a secret that matches neither commitment
    a, b, c = client.real(b"x", 7), client.real(b"y", 7), client.real(b"z", 8)
    mixed = combine([a.share, b.share, c.share], 3)
    for v in (a, c):
        with pytest.raises(VoucherError):
            open_payload(v, mixed)


def test_period_keys_rotate() -> None:
    k7 = derive_period_key(SECRET, ACCOUNT, 7, 3)
    k8 = derive_period_key(SECRET, ACCOUNT, 8, 3)
    assert k7.secret != k8.secret and k7.commitment != k8.commitment and k7.coefficients != k8.coefficients
    assert derive_period_key(SECRET, ACCOUNT, 7, 3) == k7  # deterministic within a period
    assert period_of(0) == 0 and period_of(30 * 86_400) == 1 and period_of(30 * 86_400 - 1) == 0
    assert "secret" not in repr(k7) and str(k7.secret) not in repr(k7)


def test_replayed_voucher_and_repeated_share_index_are_refused() -> None:
    client, book = Client(threshold=3), VoucherBook()
    v = client.real(b"r")
    book.add(v)
    with pytest.raises(VoucherRefused, match="replay"):
        book.add(v)
    same_x = dataclasses.replace(client.real(b"s"), x=v.x, y=v.y)
    with pytest.raises(VoucherRefused, match="share index"):
        book.add(same_x)
    [status] = book.status()
    assert status.vouchers == 1


def test_forged_share_is_detected_and_dropped() -> None:
    client, book = Client(threshold=3), VoucherBook()
    real = [client.real(f"r{i}".encode()) for i in range(3)]
    forged = dataclasses.replace(real[0], y=(real[0].y + 1) % PRIME)
    assert book.add(forged).status == "held"
    assert book.add(real[1]).status == "held"
    # three shares, one forged: the commitment refuses the garbage key, nothing opens
    assert book.add(real[2]).status == "held"
    assert not book.status()[0].opened
    fourth = book.add(client.real(b"r3"))
    assert fourth.status == "opened"
    assert sorted(o.body for o in fourth.opened) == [b"r1", b"r2", b"r3"]
    assert fourth.dropped == (forged.id_hex,)


def test_inconsistent_commitment_and_foreign_sender_refused() -> None:
    client, book = Client(threshold=3), VoucherBook()
    book.add(client.real(b"a"))
    other = dataclasses.replace(client.real(b"b"), commitment=bytes(32))
    with pytest.raises(VoucherRefused, match="commitment"):
        book.add(other)
    with pytest.raises(VoucherRefused, match="sender"):
        book.add(client.real(b"c"), sender="b" * 52)


def test_synthetic_vouchers_look_like_real_ones() -> None:
    client = Client(threshold=3)
    authority = nacl.signing.SigningKey.generate()
    pub = bytes(authority.verify_key)
    real, fake = client.real(b"a short report"), client.synthetic()
    assert len(encode_voucher(real)) == len(encode_voucher(fake))
    assert len(seal_voucher(real, pub)) == len(seal_voucher(fake, pub))
    assert real.commitment == fake.commitment and real.period == fake.period
    assert len(real.payload) == len(fake.payload) == PAYLOAD_PLAIN_BYTES + 16
    assert open_voucher(seal_voucher(fake, pub), bytes(authority)) == fake


def test_synthetic_vouchers_below_t_keep_the_book_closed_and_are_dropped_at_t() -> None:
    client, book = Client(threshold=3), VoucherBook()
    sequence = [client.synthetic(), client.real(b"r0"), client.synthetic(), client.real(b"r1"),
                client.synthetic()]
    outcomes = [book.add(v) for v in sequence]
    assert all(o.status == "held" for o in outcomes)
    assert book.status()[0].vouchers == 5
    final = book.add(client.real(b"r2"))
    assert final.status == "opened"
    assert sorted(o.body for o in final.opened) == [b"r0", b"r1", b"r2"]
    assert len(final.dropped) == 3
    assert book.add(client.synthetic()).status == "dropped"


def test_error_correcting_decoder_opens_when_subsets_are_too_many() -> None:
    client, book = Client(threshold=4), VoucherBook(subset_limit=0)
    rng = random.Random(3)
    vouchers = [client.real(f"r{i}".encode()) for i in range(7)] + [client.synthetic() for _ in range(3)]
    rng.shuffle(vouchers)
    opened = [o.body for v in vouchers for o in book.add(v).opened]
    # Berlekamp-Welch needs real >= (n + t) / 2 among the n held: it opens before the last voucher at latest
    assert sorted(opened) == sorted(f"r{i}".encode() for i in range(7))
    assert book.status()[0].dropped_vouchers == 3


def test_share_indices_never_zero_and_never_repeat() -> None:
    xs = [share_index(SECRET, ACCOUNT, 7, n) for n in range(5_000)]
    assert len(set(xs)) == len(xs) and all(0 < x < PRIME for x in xs)


def test_outer_seal_needs_the_authority_key() -> None:
    authority, stranger = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    sealed = seal_voucher(Client().real(b"x"), bytes(authority.verify_key))
    with pytest.raises(VoucherError):
        open_voucher(sealed, bytes(stranger))
    with pytest.raises(VoucherError):
        open_voucher(b"PSRP" + sealed[4:], bytes(authority))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_decode_hostile_bytes_only_raises_voucher_error(data: bytes) -> None:
    with contextlib.suppress(VoucherError):
        decode_voucher(data)


@settings(max_examples=30, deadline=None)
@given(threshold=st.integers(1, 6), synthetic=st.integers(0, 3), seed=st.integers(0, 2**32))
def test_book_opens_exactly_at_t_real(threshold: int, synthetic: int, seed: int) -> None:
    """Property: whatever the order, nothing opens before the t-th real voucher and everything real opens."""
    client, book = Client(threshold=threshold), VoucherBook()
    items = [("real", i) for i in range(threshold + 1)] + [("synthetic", i) for i in range(synthetic)]
    random.Random(seed).shuffle(items)
    real_seen = 0
    opened: list[bytes] = []
    for kind, i in items:
        v = client.real(f"r{i}".encode()) if kind == "real" else client.synthetic()
        real_seen += kind == "real"
        out = book.add(v)
        opened += [o.body for o in out.opened]
        if real_seen < threshold:
            assert opened == []
    assert sorted(opened) == sorted(f"r{i}".encode() for i in range(threshold + 1))


def test_derivations_are_the_documented_ones() -> None:
    """docs/threshold.md "Exact derivations", recomputed independently with hmac and struct."""
    import hashlib
    import hmac
    import struct

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    def prf(key: bytes, label: bytes, *parts: int | str) -> bytes:
        msg = lp(b"pocketscan voucher v1") + lp(label)
        for part in parts:
            msg += lp(part.to_bytes(16, "big") if isinstance(part, int) else part.encode())
        return hmac.new(key, msg, hashlib.sha512).digest()

    key = derive_period_key(SECRET, ACCOUNT, 7, 3)
    s_bytes = key.secret.to_bytes(32, "big")
    assert key.secret == int.from_bytes(prf(SECRET, b"period secret", ACCOUNT, 7, 3), "big") % PRIME
    assert key.coefficients == tuple(
        int.from_bytes(prf(SECRET, b"coefficient", ACCOUNT, 7, 3, i), "big") % PRIME for i in (1, 2))
    assert share_index(SECRET, ACCOUNT, 7, 5) == 1 + int.from_bytes(
        prf(SECRET, b"share index", ACCOUNT, 7, 5), "big") % (PRIME - 1)
    assert key.commitment == prf(s_bytes, b"commitment", ACCOUNT, 7, 3)[:32]
    assert key.aead_key == prf(s_bytes, b"aead key", ACCOUNT, 7, 3)[:32]
