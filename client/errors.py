"""Errors raised by the pocketscan client (crypto core, sessions, attachments, local store).

Each class's docstring is its user-facing explanation; messages never contain keys or plaintext.

Tree::

    ClientError                     base of every client error
    ├── CryptoError                 end-to-end encryption failures
    │   ├── DecryptionFailed        a message could not be authenticated/decrypted (never says which step)
    │   │   ├── DuplicateMessage    already decrypted once (a replay or a resend); state unchanged
    │   │   └── TooFarAhead         more than MAX_SKIP messages skipped in one chain (DoS guard)
    │   ├── InvalidSignature        a prekey bundle's signed prekey signature does not verify
    │   ├── InvalidBundle           a prekey bundle or prekey message is malformed
    │   ├── IdentityKeyChanged      a contact's identity key differs from the one we know
    │   ├── NoSession               no session with this peer yet (fetch their bundle first)
    │   ├── AttachmentCorrupt       an attachment blob failed its digest or MAC check
    │   └── ScanVerdictRequired     an image was offered for encryption without a verdict for its bytes
    └── StoreError                  the encrypted local store
        ├── StoreLocked             the store needs a passphrase (or is used after close)
        │   └── WrongPassphrase     the passphrase does not open this store
        ├── StoreCorrupt            the store file is damaged or not a pocketscan store
        └── UnknownContact          no contact with this account id or name
"""

from __future__ import annotations

__all__ = [
    "AttachmentCorrupt",
    "ClientError",
    "CryptoError",
    "DecryptionFailed",
    "DuplicateMessage",
    "IdentityKeyChanged",
    "InvalidBundle",
    "InvalidSignature",
    "NoSession",
    "ScanVerdictRequired",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "TooFarAhead",
    "UnknownContact",
    "WrongPassphrase",
]


class ClientError(Exception):
    """Something went wrong in the pocketscan client."""


class CryptoError(ClientError):
    """An end-to-end encryption operation failed."""


class DecryptionFailed(CryptoError):
    """The message could not be decrypted: it was tampered with, truncated, or not meant for the session.

    The session is unchanged and stays usable.
    """


class DuplicateMessage(DecryptionFailed):
    """This message was already received and decrypted (a replay or a duplicate delivery)."""


class TooFarAhead(DecryptionFailed):
    """The message claims to skip more messages than allowed (MAX_SKIP); it was refused."""


class InvalidSignature(CryptoError):
    """The contact's signed prekey is not signed by their identity key: the bundle is forged or damaged."""


class InvalidBundle(CryptoError):
    """The prekey bundle or session-setup message is malformed."""


class IdentityKeyChanged(CryptoError):
    """This contact's identity key changed: verify the safety number before trusting them again.

    Attributes:
        account_id: the contact's account id.
        old_key: the identity public key we knew (may be None when the key does not match the account id).
        new_key: the identity public key now presented.
    """

    def __init__(self, message: str, *, account_id: str, old_key: bytes | None, new_key: bytes) -> None:
        super().__init__(message)
        self.account_id = account_id
        self.old_key = old_key
        self.new_key = new_key


class NoSession(CryptoError):
    """There is no encrypted session with this contact yet."""


class AttachmentCorrupt(CryptoError):
    """The attachment was damaged or tampered with in transit; nothing of it is shown."""


class ScanVerdictRequired(CryptoError):
    """An image can only be encrypted with the scanner's verdict for exactly those bytes."""


class StoreError(ClientError):
    """The encrypted local store could not be used."""


class StoreLocked(StoreError):
    """The local store is locked: it needs its passphrase."""


class WrongPassphrase(StoreLocked):
    """The passphrase does not open this profile's store."""


class StoreCorrupt(StoreError):
    """The local store file is damaged or is not a pocketscan store."""


class UnknownContact(StoreError):
    """No contact with this account id or name."""
