"""Contacts: names, identity keys (trust on first use), the verified mark and unread counts."""

from __future__ import annotations

import hmac
from dataclasses import replace

import cbor2

from client.crypto.identity import account_id_from_public_key, parse_account_id
from client.errors import IdentityKeyChanged, UnknownContact
from client.store.database import Database
from client.store.records import Contact
from client.store.sessions import SessionRepository

__all__ = ["ContactRepository"]


class ContactRepository:
    """Contacts in the order they were added; lookup by account id or (case-insensitive) name.

    Rows are sealed; the ``peer`` and ``name`` columns hold keyed MACs, never an id or a name.
    """

    def __init__(self, db: Database, sessions: SessionRepository) -> None:
        self._db = db
        self._sessions = sessions

    def _write(self, c: Contact, seq: int | None = None) -> None:
        data = cbor2.dumps([c.account_id, c.name, c.identity_key, c.verified, c.added_at, c.unread])
        name_mac = None if c.name is None else self._db.mac("name", c.name.casefold())
        peer = self._db.mac("peer", c.account_id)
        if seq is None:
            row = self._db.one("SELECT seq FROM contacts WHERE peer = ?", (peer,))
            if row is None:
                row = self._db.one("SELECT COALESCE(MAX(seq), 0) + 1 FROM contacts")
            seq = int(row[0])
        self._db.execute("INSERT OR REPLACE INTO contacts (peer, name, seq, v) VALUES (?, ?, ?, ?)",
                         (peer, name_mac, seq, self._db.seal("contact", bytes(data))))

    def _read(self, blob: bytes) -> Contact:
        a, n, k, v, t, u = cbor2.loads(self._db.unseal("contact", blob))
        return Contact(a, n, k, v, t, u)

    def add(self, account_id: str, *, name: str | None = None, identity_key: bytes | None = None,
            now: float = 0.0, replace_name: bool = False) -> Contact:
        """Add (or rename) a contact.

        Raises:
            IdentityKeyChanged: ``identity_key`` is not this account's, or ``name`` already belongs
                to a different account (a known contact re-appearing with another key); pass
                ``replace_name=True`` once the user confirmed the change.
        """
        with self._db.transaction():
            if identity_key is not None and account_id_from_public_key(identity_key) != account_id:
                raise IdentityKeyChanged(f"the identity key offered for {account_id} does not belong to it",
                                         account_id=account_id, old_key=None, new_key=identity_key)
            if name is not None:
                other = self.by_name(name)
                if other is not None and other.account_id != account_id:
                    if not replace_name:
                        raise IdentityKeyChanged(
                            f"contact {name!r} was {other.account_id} and is now {account_id}: "
                            "their identity key changed, verify the safety number",
                            account_id=account_id, old_key=other.identity_key, new_key=identity_key or b"")
                    self._write(replace(other, name=None))
            existing = self.get(account_id)
            if existing is None:
                contact = Contact(account_id, name, identity_key, False, now, 0)
            else:
                contact = replace(existing, name=name if name is not None else existing.name)
                if identity_key is not None:
                    contact = self._checked_key(contact, identity_key)
            self._write(contact)
            return contact

    @staticmethod
    def _checked_key(contact: Contact, key: bytes) -> Contact:
        if contact.identity_key is not None and not hmac.compare_digest(contact.identity_key, key):
            raise IdentityKeyChanged(f"the identity key of {contact.label} changed: verify the safety number",
                                     account_id=contact.account_id, old_key=contact.identity_key, new_key=key)
        return replace(contact, identity_key=key)

    def set_identity_key(self, account_id: str, key: bytes, *, accept_change: bool = False) -> Contact:
        """Record a contact's identity key (trust on first use).

        Raises:
            IdentityKeyChanged: a different key is already recorded (unless ``accept_change``, which
                also clears the verified mark), or the key is not this account's.
            UnknownContact: no such contact.
        """
        with self._db.transaction():
            contact = self.require(account_id)
            if account_id_from_public_key(key) != account_id:
                raise IdentityKeyChanged(f"the identity key offered for {account_id} does not belong to it",
                                         account_id=account_id, old_key=contact.identity_key, new_key=key)
            if accept_change:
                changed = contact.identity_key is not None and contact.identity_key != key
                contact = replace(contact, identity_key=key, verified=contact.verified and not changed)
            else:
                contact = self._checked_key(contact, key)
            self._write(contact)
            return contact

    def set_verified(self, account_id: str, verified: bool = True) -> Contact:
        """Mark a contact's safety number as verified (or not)."""
        with self._db.transaction():
            contact = replace(self.require(account_id), verified=verified)
            self._write(contact)
            return contact

    def get(self, account_id: str) -> Contact | None:
        """The contact with ``account_id``, or None."""
        row = self._db.one("SELECT v FROM contacts WHERE peer = ?", (self._db.mac("peer", account_id),))
        return None if row is None else self._read(row[0])

    def require(self, account_id: str) -> Contact:
        """The contact with ``account_id``; raise UnknownContact otherwise."""
        contact = self.get(account_id)
        if contact is None:
            raise UnknownContact(f"no contact with account id {account_id}")
        return contact

    def by_name(self, name: str) -> Contact | None:
        """The contact named ``name`` (case-insensitive), or None."""
        row = self._db.one("SELECT v FROM contacts WHERE name = ?", (self._db.mac("name", name.casefold()),))
        return None if row is None else self._read(row[0])

    def find(self, name_or_id: str) -> Contact:
        """Resolve a name or an account id (any display form); raise UnknownContact."""
        contact = self.by_name(name_or_id)
        if contact is not None:
            return contact
        try:
            return self.require(parse_account_id(name_or_id))
        except ValueError:
            raise UnknownContact(f"no contact named {name_or_id!r}") from None

    def all(self) -> list[Contact]:
        """All contacts in the order they were added."""
        return [self._read(r[0]) for r in self._db.all("SELECT v FROM contacts ORDER BY seq")]

    def remove(self, account_id: str) -> None:
        """Delete a contact and its sessions (history stays)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM contacts WHERE peer = ?", (self._db.mac("peer", account_id),))
            self._sessions.delete(account_id)

    def count_unread(self, account_id: str) -> None:
        """One more unread message from a contact (nothing if ``account_id`` is no contact)."""
        with self._db.transaction():
            contact = self.get(account_id)
            if contact is not None:
                self._write(replace(contact, unread=contact.unread + 1))

    def mark_read(self, account_id: str) -> None:
        """Reset a contact's unread count."""
        with self._db.transaction():
            contact = self.get(account_id)
            if contact is not None and contact.unread:
                self._write(replace(contact, unread=0))
