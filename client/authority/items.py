"""Sealed items to the authority (submissions, appeals) and sealed decision notices back to a user.

Both sides share this module: the client seals, the authority opens. Formats (all CBOR maps, text keys):

**Item** (client -> authority mailbox)::

    "PSA1" || SealedBox(X25519(authority Ed25519 public key)).encrypt(cbor({
        "v": 1, "kind": KIND, "sender": SENDER_ED25519_PUBLIC (32 bytes), "body": BODY (CBOR bytes),
        "sig": Ed25519_sender(ITEM_CONTEXT || authority public key || kind || 0x00 || BODY)}))

The sealed box hides everything from the relay; the signature binds the body to the sender's identity key
and to this authority, so the authority can check that the item comes from the relay-authenticated account
(``account_id(sender) == relay sender``) and was not re-targeted or altered. Reports (``client/report.py``,
magic ``PSRP``) predate this format: they are anonymous sealed boxes whose ``reporter`` field the authority
compares with the relay-authenticated sender.

**Notice** (authority -> the submitter's or appellant's mailbox, sent from the authority's account)::

    "PSN1" || SealedBox(X25519(recipient identity key)).encrypt(cbor({
        "v": 1, "body": BODY, "sig": Ed25519_authority(NOTICE_CONTEXT || recipient account id || BODY)}))

The client accepts a notice only from the pinned authority's mailbox account and only if the signature
verifies under the pinned authority key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cbor2
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from client.crypto.identity import IdentityKeyPair, account_id_from_public_key
from client.errors import ClientError

__all__ = [
    "ITEM_MAGIC",
    "MAX_BODY",
    "NOTICE_MAGIC",
    "ItemError",
    "Notice",
    "OpenedItem",
    "is_notice",
    "new_ref",
    "open_item",
    "open_notice",
    "seal_item",
    "seal_notice",
]

ITEM_MAGIC = b"PSA1"
NOTICE_MAGIC = b"PSN1"
ITEM_CONTEXT = b"pocketscan-authority-item-v1\x00"
NOTICE_CONTEXT = b"pocketscan-authority-notice-v1\x00"
MAX_BODY = 64 * 1024
"""Largest item or notice body (CBOR bytes); an attached image travels as an encrypted blob."""
MAX_ENVELOPE = MAX_BODY + 4096
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_REF = re.compile(r"^[0-9a-f]{32}$")


class ItemError(ClientError):
    """A sealed item or notice cannot be sealed or opened (wrong key, damaged, forged, not ours)."""


@dataclass(frozen=True)
class OpenedItem:
    """A verified item: its kind, decoded body and the account that signed it."""

    kind: str
    body: dict[str, Any]
    sender_key: bytes
    sender: str


@dataclass(frozen=True)
class Notice:
    """A decision on a user's submission or appeal, as the user's client shows it."""

    ref: str
    """The client's own id of the item (``submission_id`` or ``appeal_id``)."""
    kind: str
    decision: str
    """``accepted`` or ``rejected``."""
    note: str
    decided_at: float
    snapshot_version: int | None = None
    """The first snapshot version that carries the decision (None when the bank did not change)."""

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "kind": self.kind, "decision": self.decision, "note": self.note,
                "decided_at": self.decided_at, "snapshot_version": self.snapshot_version}

    def describe(self) -> str:
        """One line for the user (``pocketscan inbox``, the TUI)."""
        what = {"submission": "Your protection request", "appeal": "Your appeal"}.get(self.kind, self.kind)
        text = f"{what} {self.ref[:8]} was {self.decision} by the authority"
        if self.snapshot_version is not None:
            text += f" (in effect from snapshot v{self.snapshot_version})"
        return text + (f": {self.note}" if self.note else ".")


def new_ref() -> str:
    """A fresh client-side item id (32 hex characters)."""
    import os

    return os.urandom(16).hex()


def is_ref(value: object) -> bool:
    """True if ``value`` is shaped like a client item id."""
    return isinstance(value, str) and bool(_REF.match(value))


def _x25519(ed25519_public: bytes) -> nacl.public.PublicKey:
    try:
        return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise ItemError("not a valid Ed25519 public key") from None


def _signed_item(authority_public: bytes, kind: str, body: bytes) -> bytes:
    return ITEM_CONTEXT + authority_public + kind.encode() + b"\x00" + body


def seal_item(kind: str, body: dict[str, Any], identity: IdentityKeyPair, authority_public: bytes) -> bytes:
    """Sign ``body`` with the sender's identity key and seal it to the authority."""
    if not _KIND.match(kind):
        raise ItemError(f"not an item kind: {kind!r}")
    raw = bytes(cbor2.dumps(body))
    if len(raw) > MAX_BODY:
        raise ItemError(f"the item is larger than {MAX_BODY} bytes")
    inner = {"v": 1, "kind": kind, "sender": identity.public, "body": raw,
             "sig": identity.sign(_signed_item(authority_public, kind, raw))}
    return ITEM_MAGIC + bytes(nacl.public.SealedBox(_x25519(authority_public)).encrypt(cbor2.dumps(inner)))


def open_item(envelope: bytes, authority_seed: bytes) -> OpenedItem:
    """Authority side: decrypt, decode and verify an item (the caller checks the sender account).

    Raises:
        ItemError: not an item, does not open with this key, malformed, or the signature does not verify.
    """
    if not envelope.startswith(ITEM_MAGIC):
        raise ItemError("not a pocketscan item envelope")
    if len(envelope) > MAX_ENVELOPE:
        raise ItemError("the envelope is too large")
    signing = nacl.signing.SigningKey(authority_seed)
    try:
        plain = nacl.public.SealedBox(signing.to_curve25519_private_key()).decrypt(envelope[len(ITEM_MAGIC):])
    except nacl.exceptions.CryptoError:
        raise ItemError("the envelope does not open with this authority's key") from None
    try:
        inner = cbor2.loads(plain)
    except Exception:
        raise ItemError("the item is not valid CBOR") from None
    if not isinstance(inner, dict) or inner.get("v") != 1:
        raise ItemError("unknown item version")
    kind, sender, raw, sig = inner.get("kind"), inner.get("sender"), inner.get("body"), inner.get("sig")
    if not (isinstance(kind, str) and _KIND.match(kind) and isinstance(sender, bytes) and len(sender) == 32
            and isinstance(raw, bytes) and len(raw) <= MAX_BODY
            and isinstance(sig, bytes) and len(sig) == 64):
        raise ItemError("malformed item fields")
    try:
        nacl.signing.VerifyKey(sender).verify(_signed_item(bytes(signing.verify_key), kind, raw), sig)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
        raise ItemError("the item's signature does not verify under its sender key") from None
    try:
        body = cbor2.loads(raw)
    except Exception:
        raise ItemError("the item body is not valid CBOR") from None
    if not isinstance(body, dict):
        raise ItemError("the item body is not a map")
    return OpenedItem(kind, body, sender, account_id_from_public_key(sender))


def is_notice(envelope: bytes) -> bool:
    """True if ``envelope`` looks like a decision notice (open it with :func:`open_notice`)."""
    return envelope.startswith(NOTICE_MAGIC)


def seal_notice(notice: Notice, authority_seed: bytes, recipient_key: bytes) -> bytes:
    """Authority side: sign ``notice`` and seal it to the recipient's identity key."""
    raw = bytes(cbor2.dumps(notice.to_dict()))
    recipient = account_id_from_public_key(recipient_key)
    signing = nacl.signing.SigningKey(authority_seed)
    sig = bytes(signing.sign(NOTICE_CONTEXT + recipient.encode() + raw).signature)
    inner = cbor2.dumps({"v": 1, "body": raw, "sig": sig})
    return NOTICE_MAGIC + bytes(nacl.public.SealedBox(_x25519(recipient_key)).encrypt(inner))


def open_notice(envelope: bytes, identity: IdentityKeyPair, authority_public: bytes) -> Notice:
    """Client side: decrypt a notice and verify the pinned authority's signature.

    Raises:
        ItemError: not a notice for this identity, or not signed by the pinned authority.
    """
    if not is_notice(envelope) or len(envelope) > MAX_ENVELOPE:
        raise ItemError("not a pocketscan decision notice")
    private = nacl.public.PrivateKey(identity.x25519_private())
    try:
        inner = cbor2.loads(nacl.public.SealedBox(private).decrypt(envelope[len(NOTICE_MAGIC):]))
        raw, sig = inner["body"], inner["sig"]
        signed = NOTICE_CONTEXT + identity.account_id.encode() + raw
        nacl.signing.VerifyKey(authority_public).verify(signed, sig)
        body = cbor2.loads(raw)
        version = body.get("snapshot_version")
        notice = Notice(str(body["ref"]), str(body["kind"]), str(body["decision"]), str(body["note"])[:2000],
                        float(body["decided_at"]), None if version is None else int(version))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError):
        raise ItemError("the notice does not open or is not signed by the pinned authority") from None
    except Exception:
        raise ItemError("malformed notice") from None
    if not is_ref(notice.ref) or notice.decision not in ("accepted", "rejected"):
        raise ItemError("malformed notice")
    return notice
