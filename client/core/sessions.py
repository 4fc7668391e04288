"""Sessions: our prekeys at the relay, end-to-end sessions with peers, and encrypt-then-queue.

* :meth:`Sessions.on_connected` runs once per connection: it publishes the prekey bundle (first
  time) or rotates the signed prekey and tops the one-time prekeys up, and encrypts the texts
  written offline to peers without a session yet (:meth:`queue_for_session`).
* :meth:`Sessions.session_for` sets a session up from the peer's prekey bundle (X3DH) unless one
  exists; a bundle with another identity key than the pinned one flags a key change and sends nothing.
* :meth:`Sessions.enqueue` encrypts one content and persists session, message and envelope in one
  transaction before the link is woken (nothing is sent that is not on disk).

Collaborators: the encrypted store, the identity and prekey state, the contacts (pinned keys), the
outbox, a :class:`SessionLink` (the relay requests; ``client.net.Net`` in the core, a recorder in
tests), the event hub, a clock, a trace callback, an error note and the core's lock.
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import cbor2

from client.core.contacts import Contacts
from client.core.outbox import Outbox
from client.core.shared import Shared
from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyBundle, PreKeyState
from client.errors import ClientError, CryptoError, IdentityKeyChanged
from client.image_pipeline import SendError
from client.interfaces import DeliveryChanged
from client.net import NetError
from client.session import Content, SessionRecord, initiate_session
from client.store import MessageRecord, OutboxItem, Store

__all__ = ["LOW_PREKEYS", "SessionLink", "Sessions"]

LOW_PREKEYS = 20
"""Top the one-time prekeys up at the relay when fewer than this are left."""
_PUBLISHED = "prekeys_published"
"""Store flag: the prekey bundle is at the relay."""
_AWAITING = "awaiting_session"
"""Store setting: ids of texts written offline to a contact without a session yet. The session needs
the contact's prekey bundle from the relay, so the message waits (in the encrypted store)."""


class SessionLink(Protocol):
    """The relay requests sessions need (``client.net.Net``)."""

    async def fetch_bundle(self, account: str) -> tuple[bytes, bytes | None]: ...

    async def publish_prekeys(self, bundle: bytes | None, one_time: list[bytes], *, replace: bool) -> int: ...

    async def count_prekeys(self) -> int: ...

    def kick(self) -> None: ...


@dataclass(eq=False, repr=False)
class Sessions:
    """Prekeys, sessions and the encrypted, persisted send queue."""

    store: Store
    shared: Shared
    identity: IdentityKeyPair
    prekeys: PreKeyState
    """The one-time and signed prekeys, kept equal to the stored ones."""
    _: KW_ONLY
    contacts: Contacts
    outbox: Outbox
    link: SessionLink

    # ----- our prekeys -------------------------------------------------------------------------
    def _bundle_bytes(self) -> bytes:
        bundle = self.prekeys.bundle(self.identity.public)
        return bytes(cbor2.dumps(bundle.to_dict()))

    @staticmethod
    def _otk_bytes(keys: list[Any]) -> list[bytes]:
        return [bytes(cbor2.dumps([k.key_id, k.keypair.public])) for k in keys]

    def published(self) -> bool:
        """True once the prekey bundle is at the relay."""
        return bool(self.store.settings.get(_PUBLISHED, False))

    def reload_prekeys(self) -> None:
        """Reread the stored prekeys (a one-time prekey may have been spent in memory only)."""
        self.prekeys = self.store.keys.load_prekeys() or self.prekeys

    async def on_connected(self) -> None:
        """Per connection: publish or top up prekeys, rotate the signed prekey when due, send queued texts."""
        async with self.shared.lock():
            if self.store.settings.get(_AWAITING, []):
                await self.drain_awaiting()
            now = self.shared.clock()
            if not self.published():
                await self.link.publish_prekeys(self._bundle_bytes(),
                                                self._otk_bytes(list(self.prekeys.one_time.values())),
                                                replace=True)
                self.store.settings.set(_PUBLISHED, True)
                self.shared.trace("net.prekeys_published")
                return
            changed = False
            if self.prekeys.needs_rotation(now):
                self.prekeys.rotate(self.identity, now)
                self.prekeys.prune(now)
                changed = True
            left = await self.link.count_prekeys()
            fresh = []
            if left < LOW_PREKEYS:
                fresh = self.prekeys.replenish(len(self.prekeys.one_time) + max(0, 100 - left))
            if changed or fresh:
                self.store.keys.save_prekeys(self.prekeys)
                await self.link.publish_prekeys(self._bundle_bytes(), self._otk_bytes(fresh), replace=False)

    # ----- sessions with peers -----------------------------------------------------------------
    def has_session(self, peer: str) -> bool:
        record = self.store.sessions.load(peer)
        return record is not None and bool(record.sessions)

    async def session_for(self, peer: str) -> SessionRecord:
        """The session with ``peer``, set up from their prekey bundle if needed (lock held)."""
        record = self.store.sessions.load(peer)
        if record is not None and record.sessions:
            return record
        contact = self.store.contacts.require(peer)
        if peer in self.contacts.key_changed():
            raise SendError(f"the safety number of {contact.label} changed: verify it before sending")
        raw_bundle, otk = await self.link.fetch_bundle(peer)
        self.shared.trace("net.bundle_fetched")
        try:
            fields = cbor2.loads(raw_bundle)
            if otk is not None:
                otk_id, otk_key = cbor2.loads(otk)
                fields["one_time_prekey_id"], fields["one_time_prekey"] = otk_id, otk_key
            bundle = PreKeyBundle.from_dict(fields)
        except CryptoError:
            raise
        except Exception:
            raise SendError(f"the relay returned a malformed prekey bundle for {contact.label}") from None
        try:
            record = initiate_session(self.identity, bundle, account_id=peer, record=record,
                                      known_identity_key=contact.identity_key)
        except IdentityKeyChanged as exc:
            self.contacts.flag_key_change(peer, exc.old_key, exc.new_key)
            raise SendError(f"the safety number of {contact.label} changed: nothing was sent; "
                            "verify the new safety number first") from None
        if contact.identity_key is None:
            self.store.contacts.set_identity_key(peer, bundle.identity_key)
        return record

    async def enqueue(self, peer: str, content: Content, message: MessageRecord | None, *,
                      kind: str, msg_id: str | None = None) -> None:
        """Encrypt ``content`` for ``peer`` and persist session, message and envelope together (lock held)."""
        record = await self.session_for(peer)
        self.shared.trace("session.encrypt")
        payload = record.encrypt(content.to_bytes())
        envelope_id = os.urandom(16).hex()
        meta: dict[str, Any] = {"kind": kind}
        msg_id = message.msg_id if message is not None else msg_id
        if msg_id is not None:
            meta["msg_id"] = msg_id
            self.outbox.track(envelope_id, msg_id)
        with self.store.transaction():
            self.store.sessions.save(record)
            if message is not None:
                self.store.messages.add(message)
            self.store.outbox.put(OutboxItem(envelope_id, peer, payload, self.shared.clock(), 0, meta))
        self.shared.trace("net.send")
        self.link.kick()

    # ----- texts waiting for a session ---------------------------------------------------------
    def queue_for_session(self, message: MessageRecord) -> None:
        """Store a text written offline to a peer without a session; it is encrypted once connected."""
        self.store.contacts.require(message.peer)
        with self.store.transaction():
            self.store.messages.add(message)
            waiting = self.store.settings.get(_AWAITING, [])
            self.store.settings.set(_AWAITING, [*waiting, message.msg_id])
        self.shared.trace("outbox.queued_for_session")

    def awaiting(self) -> int:
        """How many queued texts still wait for a connection to set up their session."""
        return len(self.store.settings.get(_AWAITING, []))

    async def drain_awaiting(self) -> None:
        """Encrypt and enqueue the texts queued while offline (lock held; called once connected)."""
        for msg_id in list(self.store.settings.get(_AWAITING, [])):
            message = self.store.messages.get(msg_id)
            if message is not None and message.kind == "text" and message.state == "sending":
                content = Content("text", msg_id, message.sent_at, text=message.body or "")
                try:
                    await self.enqueue(message.peer, content, None, kind="text", msg_id=msg_id)
                except (ClientError, NetError) as exc:  # this message fails; the others still go
                    self.store.messages.update(msg_id, state="failed")
                    self.shared.hub.emit(DeliveryChanged(msg_id, message.peer, "failed"))
                    self.shared.note_error(str(exc))
            left = [m for m in self.store.settings.get(_AWAITING, []) if m != msg_id]
            self.store.settings.set(_AWAITING, left)
