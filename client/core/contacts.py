"""Contacts: the address book, invite codes, pinned identity keys, key-change flags, safety numbers.

A contact's identity key is pinned on first use. When a peer's key changes (a relay handing out
another bundle, or an inbound session setup with another key) :meth:`Contacts.flag_key_change`
records the new key as *pending* and emits :class:`~client.interfaces.KeyChanged`; nothing is
encrypted to that peer until the user verifies the new safety number (:meth:`Contacts.set_verified`).

Collaborators: the encrypted store, the account's identity key, the event hub, a clock and a trace
callback (no network: adding a contact needs none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from client.core.shared import Shared
from client.crypto.identity import IdentityKeyPair, account_id_from_public_key, parse_account_id
from client.crypto.safety import safety_number
from client.errors import ClientError
from client.interfaces import ContactView, KeyChanged
from client.store import Store

__all__ = ["ACCOUNT_ID", "INVITE_PREFIX", "Contacts", "format_invite", "parse_contact_ref"]

INVITE_PREFIX = "psinv:"
ACCOUNT_ID = re.compile(r"[a-z2-7]{32}")
"""The canonical form of an account id (what the relay names senders by)."""
_KEY_CHANGED = "key_changed"
"""Store setting: peers whose identity key changed and is not verified yet."""
_PENDING_KEYS = "pending_keys"
"""Store setting: peer -> the new identity key awaiting verification."""


def format_invite(account_id: str, name: str = "") -> str:
    """An invite code: ``psinv:<account id>[:<name>]`` (copy-paste it to a contact)."""
    clean = "".join(ch for ch in name if ch.isalnum() or ch in "-_.")[:32]
    return f"{INVITE_PREFIX}{account_id}" + (f":{clean}" if clean else "")


def parse_contact_ref(text: str) -> tuple[str, str]:
    """An account id (any display form) or an invite code -> ``(account_id, suggested_name)``."""
    text = text.strip()
    if text.startswith(INVITE_PREFIX):
        rest = text[len(INVITE_PREFIX):]
        account, _, name = rest.partition(":")
        return parse_account_id(account), name
    return parse_account_id(text), ""


@dataclass(eq=False, repr=False)
class Contacts:
    """The profile's contacts as front ends see them, and the key-change rules."""

    store: Store
    shared: Shared
    identity: IdentityKeyPair

    def key_changed(self) -> set[str]:
        """Peers whose identity key changed and is not verified yet (nothing is sent to them)."""
        return set(self.store.settings.get(_KEY_CHANGED, []))

    def flag_key_change(self, peer: str, old: bytes | None, new: bytes) -> None:
        """Record ``new`` as ``peer``'s pending key and warn the front ends (:class:`KeyChanged`)."""
        flagged = self.key_changed() | {peer}
        self.store.settings.set(_KEY_CHANGED, sorted(flagged))
        pending = dict(self.store.settings.get(_PENDING_KEYS, {}))
        pending[peer] = new
        self.store.settings.set(_PENDING_KEYS, pending)
        self.shared.trace("core.key_changed")
        self.shared.hub.emit(KeyChanged(peer, (old or b"").hex()[:16], new.hex()[:16]))

    def view(self, c: Any) -> ContactView:
        """The front ends' view of a stored contact."""
        flagged = c.account_id in self.key_changed()
        return ContactView(c.account_id, c.name or "", c.unread, c.verified, flagged)

    def all(self) -> list[ContactView]:
        """Every contact, in the store's order."""
        flagged = self.key_changed()
        return [ContactView(c.account_id, c.name or "", c.unread, c.verified, c.account_id in flagged)
                for c in self.store.contacts.all()]

    def resolve(self, name_or_id: str) -> str:
        """Account id of a contact given by name or id (raises UnknownContact)."""
        return self.store.contacts.find(name_or_id).account_id

    def label(self, sender: str) -> str:
        """A printable name for ``sender`` (its contact label, the id itself, or ``?`` if malformed)."""
        if not ACCOUNT_ID.fullmatch(sender):
            return "?"
        contact = self.store.contacts.get(sender)
        return contact.label if contact is not None else sender

    async def add(self, account_or_invite: str, name: str = "") -> ContactView:
        """Add a contact by account id or invite code (no network needed)."""
        try:
            account, suggested = parse_contact_ref(account_or_invite)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        if account == self.identity.account_id:
            raise ClientError("that is your own account id")
        contact = self.store.contacts.add(account, name=(name or suggested or None), now=self.shared.clock())
        self.shared.trace("store.contact_added")
        return self.view(contact)

    def mark_read(self, peer: str) -> None:
        self.store.contacts.mark_read(peer)

    def safety_number(self, peer: str) -> str:
        """60 digits, or "" while the contact's identity key is unknown (before any exchange)."""
        pending = self.store.settings.get(_PENDING_KEYS, {}).get(peer)
        contact = self.store.contacts.get(peer)
        key = pending or (contact.identity_key if contact else None)
        return "" if key is None else safety_number(self.identity.public, key)

    def set_verified(self, peer: str, verified: bool) -> None:
        """Mark the safety number verified (accepting a changed key, which starts a new session)."""
        pending = dict(self.store.settings.get(_PENDING_KEYS, {}))
        with self.store.transaction():
            if verified and peer in pending:
                new = pending.pop(peer)
                if account_id_from_public_key(new) == peer:
                    self.store.contacts.set_identity_key(peer, new, accept_change=True)
                self.store.sessions.delete(peer)
                self.store.settings.set(_PENDING_KEYS, pending)
            if verified:
                self.store.settings.set(_KEY_CHANGED, sorted(self.key_changed() - {peer}))
            self.store.contacts.set_verified(peer, verified)
