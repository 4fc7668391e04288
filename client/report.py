"""Report envelopes: what the ``report`` policy sends to the bank authority, sealed to its key.

A report is a small CBOR map (reporter, intended recipient, time, snapshot fingerprint and
version, votes, quality, the image's PDQ hash and SHA-256), encrypted with a NaCl ``SealedBox``
to the X25519 form of the authority's Ed25519 public key: anonymous-sender public-key
encryption, so the relay that carries it (to the authority's own mailbox, the account id of its
key) cannot read it, and only the holder of the authority's private key can. The image itself is
never included: the authority learns that a banked image was about to be sent, not its pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cbor2
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from client.crypto.identity import account_id_from_public_key
from client.errors import ClientError

__all__ = ["REPORT_VERSION", "Report", "ReportError", "authority_mailbox", "open_report", "seal_report"]

REPORT_VERSION = 1
_MAGIC = b"PSRP"


class ReportError(ClientError):
    """A report could not be sealed or opened (wrong key, damaged or not a report)."""


@dataclass(frozen=True)
class Report:
    """The content of one report (what the authority reads)."""

    reporter: str
    recipient: str
    created_at: float
    snapshot_fingerprint: str | None
    snapshot_version: int | None
    votes: int
    quality: int | None
    pdq_hash: str | None
    image_sha256: str
    version: int = REPORT_VERSION


def _x25519_public(authority_ed25519: bytes) -> nacl.public.PublicKey:
    try:
        return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(authority_ed25519))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise ReportError("the authority public key is not a valid Ed25519 key") from None


def authority_mailbox(authority_ed25519: bytes) -> str:
    """The relay account id whose mailbox receives reports (the authority key's account id)."""
    return account_id_from_public_key(authority_ed25519)


def seal_report(report: Report, authority_ed25519: bytes) -> bytes:
    """Encrypt ``report`` to the authority (anonymous sender; only the authority can open it)."""
    body: dict[str, Any] = asdict(report)
    return _MAGIC + bytes(nacl.public.SealedBox(_x25519_public(authority_ed25519)).encrypt(cbor2.dumps(body)))


def open_report(envelope: bytes, authority_signing_seed: bytes) -> Report:
    """Authority side: decrypt a report with the authority's Ed25519 private seed."""
    if not envelope.startswith(_MAGIC):
        raise ReportError("not a pocketscan report envelope")
    signing = nacl.signing.SigningKey(authority_signing_seed)
    try:
        private = signing.to_curve25519_private_key()
        plain = nacl.public.SealedBox(private).decrypt(envelope[len(_MAGIC):])
        d = cbor2.loads(plain)
        return Report(**d)
    except (nacl.exceptions.CryptoError, TypeError, ValueError) as exc:
        raise ReportError(f"cannot open report: {type(exc).__name__}") from None
