"""Safety vouchers: a report encrypted under a per-account, per-period key, plus one Shamir share of it.

Pure functions: no sockets, files or clocks (the period and the randomness are passed in).

Key schedule (client side). A 32-byte client secret, kept in the encrypted profile store, never
leaves the device. For an account, a period ``P`` (an integer: ``floor(unix time / period
length)``) and a threshold ``t`` it derives, with HMAC-SHA-512 as a PRF:

* the period secret ``s`` and the coefficients ``c1 .. c(t-1)`` of a polynomial ``f`` over
  GF(2^255 - 19) (``client.vouchers.shamir``), so the same polynomial is re-derived for every
  voucher of the period without storing it, and a new one starts with each period (keys rotate;
  shares from two periods lie on unrelated polynomials and never combine);
* from ``s``: the AEAD key (ChaCha20-Poly1305) and a key commitment ``H(s)``, which travels in
  every voucher so that the authority can tell a correct reconstruction from garbage (a forged or
  synthetic share among the ones it combined);
* the share index of the ``n``-th voucher: ``x = 1 + PRF(secret, P, n) mod (p - 1)``, from a
  per-profile counter that only grows: never 0, never repeated (a repeated ``x`` is the classic
  Shamir pitfall), and it does not tell the authority how many vouchers came before.

A real voucher carries ``(x, f(x))`` and the report, padded to :data:`PAYLOAD_PLAIN_BYTES` and
encrypted under the period key with everything in the header as associated data. A synthetic
voucher carries the same header (account, period, threshold, id, a fresh ``x``, the same
commitment) with a uniformly random ``y`` and random bytes of the same length as the payload: to
the relay and to the authority below the threshold it is the same size and structure as a real
one. Vouchers are sealed to the authority's key like reports (NaCl ``SealedBox``), magic ``PSVC``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import cbor2
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from client.errors import ClientError
from client.vouchers.shamir import (
    PRIME,
    SHARE_BYTES,
    Share,
    ShareError,
    element_from_bytes,
    element_to_bytes,
    evaluate,
)

__all__ = [
    "MAX_THRESHOLD",
    "PAYLOAD_PLAIN_BYTES",
    "PERIOD_SECONDS",
    "VOUCHER_MAGIC",
    "PeriodKey",
    "Voucher",
    "VoucherError",
    "decode_voucher",
    "derive_period_key",
    "encode_voucher",
    "is_voucher_envelope",
    "key_commitment",
    "make_synthetic_voucher",
    "make_voucher",
    "open_payload",
    "open_voucher",
    "period_of",
    "seal_voucher",
    "share_index",
]

VOUCHER_VERSION = 1
VOUCHER_MAGIC = b"PSVC"
PERIOD_SECONDS = 30 * 86_400
"""Length of a key period: 30 days (vouchers of different periods never combine)."""
MAX_THRESHOLD = 100
"""Largest report threshold accepted (Apple's design used 30)."""
PAYLOAD_PLAIN_BYTES = 1024
"""Every payload is padded to this size before encryption (real and synthetic alike)."""
_TAG = 16
_NONCE = 12
_ID = 16
_COMMIT = 32
_MAX_ACCOUNT = 64
_MAX_PERIOD = 2**40
_LABEL = b"pocketscan voucher v1"


class VoucherError(ClientError):
    """A voucher could not be made, decoded or opened (damaged, wrong key, not a voucher)."""


def period_of(now: float, period_seconds: int = PERIOD_SECONDS) -> int:
    """The key period that contains the unix time ``now``."""
    if period_seconds <= 0:
        raise VoucherError("the period length must be positive")
    return int(now // period_seconds)


def _prf(key: bytes, label: bytes, *parts: bytes | int | str) -> bytes:
    """HMAC-SHA-512 over a length-prefixed encoding of ``label`` and ``parts`` (no ambiguity)."""
    mac = hmac.new(key, digestmod=hashlib.sha512)
    for part in (_LABEL, label, *parts):
        if isinstance(part, int):
            raw = part.to_bytes(16, "big", signed=False)
        elif isinstance(part, str):
            raw = part.encode()
        else:
            raw = part
        mac.update(struct.pack(">I", len(raw)) + raw)
    return mac.digest()


def _element(key: bytes, label: bytes, *parts: bytes | int | str) -> int:
    """A field element from the PRF (512 bits reduced mod p: bias below 2^-256)."""
    return int.from_bytes(_prf(key, label, *parts), "big") % PRIME


def _check_threshold(threshold: int) -> None:
    if not 1 <= threshold <= MAX_THRESHOLD:
        raise VoucherError(f"the threshold must be between 1 and {MAX_THRESHOLD}")


def key_commitment(account: str, period: int, threshold: int, secret: int) -> bytes:
    """The public commitment to a period secret (same in every voucher of the period)."""
    return _prf(element_to_bytes(secret), b"commitment", account, period, threshold)[:_COMMIT]


def _aead_key(account: str, period: int, threshold: int, secret: int) -> bytes:
    return _prf(element_to_bytes(secret), b"aead key", account, period, threshold)[:32]


@dataclass(frozen=True)
class PeriodKey:
    """The sharing polynomial of one account and period (client side; never leaves the device)."""

    account: str
    period: int
    threshold: int
    secret: int
    coefficients: tuple[int, ...]

    @property
    def commitment(self) -> bytes:
        return key_commitment(self.account, self.period, self.threshold, self.secret)

    @property
    def aead_key(self) -> bytes:
        return _aead_key(self.account, self.period, self.threshold, self.secret)

    def share(self, x: int) -> Share:
        return Share(x, evaluate((self.secret, *self.coefficients), x))

    def __repr__(self) -> str:  # never print the secret
        return f"PeriodKey(account={self.account!r}, period={self.period}, threshold={self.threshold})"


def derive_period_key(client_secret: bytes, account: str, period: int, threshold: int) -> PeriodKey:
    """Re-derive the period's polynomial from the client secret (deterministic)."""
    if len(client_secret) < 32:
        raise VoucherError("the voucher client secret must be at least 32 bytes")
    _check_threshold(threshold)
    secret = _element(client_secret, b"period secret", account, period, threshold)
    coefficients = tuple(_element(client_secret, b"coefficient", account, period, threshold, i)
                         for i in range(1, threshold))
    return PeriodKey(account, period, threshold, secret, coefficients)


def share_index(client_secret: bytes, account: str, period: int, counter: int) -> int:
    """The share index of the ``counter``-th voucher: in ``1 .. p - 1``, pseudorandom, not repeating."""
    if counter < 0:
        raise VoucherError("the voucher counter cannot be negative")
    digest = _prf(client_secret, b"share index", account, period, counter)
    return 1 + int.from_bytes(digest, "big") % (PRIME - 1)


@dataclass(frozen=True)
class Voucher:
    """One voucher as the authority sees it after opening the outer seal."""

    account: str
    period: int
    threshold: int
    voucher_id: bytes
    x: int
    y: int
    commitment: bytes
    nonce: bytes
    payload: bytes

    @property
    def share(self) -> Share:
        return Share(self.x, self.y)

    @property
    def id_hex(self) -> str:
        return self.voucher_id.hex()


def _associated_data(v: Voucher) -> bytes:
    return b"".join([
        VOUCHER_MAGIC, struct.pack(">B", VOUCHER_VERSION),
        struct.pack(">H", len(v.account.encode())), v.account.encode(),
        struct.pack(">QH", v.period, v.threshold), v.voucher_id,
        element_to_bytes(v.x), element_to_bytes(v.y), v.commitment,
    ])


def _pad(body: bytes) -> bytes:
    if len(body) > PAYLOAD_PLAIN_BYTES - 2:
        raise VoucherError(f"a voucher payload holds at most {PAYLOAD_PLAIN_BYTES - 2} bytes")
    return struct.pack(">H", len(body)) + body + bytes(PAYLOAD_PLAIN_BYTES - 2 - len(body))


def _unpad(plain: bytes) -> bytes:
    (n,) = struct.unpack(">H", plain[:2])
    if n > len(plain) - 2:
        raise VoucherError("voucher payload padding is damaged")
    return plain[2:2 + n]


Random = Callable[[int], bytes]


def make_voucher(key: PeriodKey, x: int, body: bytes, *, rand: Random = os.urandom) -> Voucher:
    """A real voucher: share ``(x, f(x))`` and ``body`` encrypted under the period key."""
    share = key.share(x)
    head = Voucher(key.account, key.period, key.threshold, rand(_ID), share.x, share.y, key.commitment,
                   rand(_NONCE), b"")
    ct = ChaCha20Poly1305(key.aead_key).encrypt(head.nonce, _pad(body), _associated_data(head))
    return replace(head, payload=ct)


def make_synthetic_voucher(key: PeriodKey, x: int, *, rand: Random = os.urandom) -> Voucher:
    """A synthetic voucher: same header and sizes, a random share value and a random payload."""
    y = int.from_bytes(rand(64), "big") % PRIME
    return Voucher(key.account, key.period, key.threshold, rand(_ID), x, y, key.commitment, rand(_NONCE),
                   rand(PAYLOAD_PLAIN_BYTES + _TAG))


def open_payload(v: Voucher, secret: int) -> bytes:
    """Authority side, once the period secret is known: decrypt the payload (raise if it does not open)."""
    if not hmac.compare_digest(key_commitment(v.account, v.period, v.threshold, secret), v.commitment):
        raise VoucherError("the secret does not match this voucher's key commitment")
    try:
        plain = ChaCha20Poly1305(_aead_key(v.account, v.period, v.threshold, secret)).decrypt(
            v.nonce, v.payload, _associated_data(v))
    except InvalidTag:
        raise VoucherError("the voucher payload does not open under the period key") from None
    return _unpad(plain)


# ----- wire format ---------------------------------------------------------------------------
def encode_voucher(v: Voucher) -> bytes:
    """Canonical CBOR of a voucher (fixed-size fields, so real and synthetic encode to one length)."""
    return bytes(cbor2.dumps([VOUCHER_VERSION, v.account, v.period, v.threshold, v.voucher_id,
                              element_to_bytes(v.x), element_to_bytes(v.y), v.commitment, v.nonce,
                              v.payload]))


def decode_voucher(data: bytes) -> Voucher:
    """Parse and bound-check one encoded voucher (hostile input: every field is checked)."""
    if len(data) > 4 * PAYLOAD_PLAIN_BYTES:
        raise VoucherError("voucher too large")
    try:
        raw: Any = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError):
        raise VoucherError("voucher is not valid CBOR") from None
    if not isinstance(raw, list) or len(raw) != 10 or raw[0] != VOUCHER_VERSION:
        raise VoucherError("not a version-1 voucher")
    _, account, period, threshold, vid, xb, yb, commitment, nonce, payload = raw
    if not isinstance(account, str) or not 0 < len(account) <= _MAX_ACCOUNT:
        raise VoucherError("voucher account is invalid")
    if not isinstance(period, int) or isinstance(period, bool) or not 0 <= period < _MAX_PERIOD:
        raise VoucherError("voucher period is invalid")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= MAX_THRESHOLD:
        raise VoucherError("voucher threshold is invalid")
    sizes = ((vid, _ID, "id"), (xb, SHARE_BYTES, "share index"), (yb, SHARE_BYTES, "share value"),
             (commitment, _COMMIT, "commitment"), (nonce, _NONCE, "nonce"),
             (payload, PAYLOAD_PLAIN_BYTES + _TAG, "payload"))
    for value, size, what in sizes:
        if not isinstance(value, bytes) or len(value) != size:
            raise VoucherError(f"voucher {what} has the wrong size")
    try:
        x = element_from_bytes(xb)
        y = element_from_bytes(yb)
    except ShareError as exc:
        raise VoucherError(f"voucher share is invalid: {exc}") from None
    if x == 0:
        raise VoucherError("voucher share index 0 is not allowed")
    return Voucher(account, period, threshold, vid, x, y, commitment, nonce, payload)


def _x25519_public(authority_ed25519: bytes) -> nacl.public.PublicKey:
    try:
        return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(authority_ed25519))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise VoucherError("the authority public key is not a valid Ed25519 key") from None


def seal_voucher(v: Voucher, authority_ed25519: bytes) -> bytes:
    """Encrypt a voucher to the authority (anonymous sender, like reports)."""
    box = nacl.public.SealedBox(_x25519_public(authority_ed25519))
    return VOUCHER_MAGIC + bytes(box.encrypt(encode_voucher(v)))


def is_voucher_envelope(envelope: bytes) -> bool:
    return envelope.startswith(VOUCHER_MAGIC)


def open_voucher(envelope: bytes, authority_signing_seed: bytes) -> Voucher:
    """Authority side: remove the outer seal (the payload stays encrypted under the period key)."""
    if not is_voucher_envelope(envelope):
        raise VoucherError("not a pocketscan voucher envelope")
    try:
        private = nacl.signing.SigningKey(authority_signing_seed).to_curve25519_private_key()
        inner = nacl.public.SealedBox(private).decrypt(envelope[len(VOUCHER_MAGIC):])
    except (nacl.exceptions.CryptoError, TypeError, ValueError) as exc:
        raise VoucherError(f"cannot open voucher: {type(exc).__name__}") from None
    return decode_voucher(inner)
