"""Inbound: one pushed envelope -> decrypted, validated, stored message (and a delivery receipt).

:meth:`InboundProcessor.handle` is the network link's ``on_inbound``. Whatever fails costs this
envelope only: it is recorded as a local "could not be shown" message, marked seen and acknowledged
(never retried forever: after :data:`MAX_INBOUND_ATTEMPTS` interrupted attempts it is recorded as
failed). The steps of :meth:`InboundProcessor.process`:

1. a sealed decision notice from the authority goes to ``notices`` (``client.protect``);
2. decrypt with the session (or set one up from a prekey message); a replay is dropped, a sender
   key that differs from the pinned one flags a key change and is dropped;
3. parse the content: a text, an image (downloaded, capped at the size its pointer implies,
   decrypted, sealed at rest, optionally scanned and rated on the device) or delivery receipts;
4. store session, prekeys, contact, message, receipts and the seen mark in one transaction;
5. emit events and queue a delivery receipt.

Collaborators: the encrypted store, the identity, the sessions, contacts and messages components,
the sealed media store, a :class:`DownloadLink` (``client.net.Net``), the scanner and classifier,
the settings, the event hub, a clock, a trace callback, an error note, the core's lock and
``notices``. No socket: tests feed it envelopes built with real sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from client.content import MAX_IMAGE_SIZE, ContentInvalid, expected_blob_size
from client.core.contacts import ACCOUNT_ID, Contacts
from client.core.messages import Messages
from client.core.sender import new_message_id
from client.core.sessions import Sessions
from client.core.shared import Shared
from client.crypto.attachments import AttachmentPointer, decrypt_attachment
from client.crypto.identity import IdentityKeyPair
from client.errors import (
    AttachmentCorrupt,
    ClientError,
    CryptoError,
    DecryptionFailed,
    DuplicateMessage,
    IdentityKeyChanged,
)
from client.interfaces import DeliveryChanged, ImageScanner, MessageReceived
from client.media_store import MediaStore
from client.net import Inbound, MissingAtRelay, NetError
from client.sensitive import ImageClassifierPort, blurs_received
from client.session import Content, Decrypted, decrypt_message
from client.store import Contact, MessageRecord, Store

__all__ = ["DOWNLOAD_TIMEOUT", "MAX_INBOUND_ATTEMPTS", "DownloadLink", "InboundProcessor", "failure_reason"]

MAX_INBOUND_ATTEMPTS = 3
"""An envelope whose processing was interrupted this often (e.g. the link dropped each time) is recorded
as failed and acknowledged instead of being retried forever."""
DOWNLOAD_TIMEOUT = 60.0
"""Longest wait for one attachment download while an envelope is being processed."""
_MAX_TRACKED = 1024
"""Envelopes whose attempts are counted at once (the oldest are forgotten first)."""


def failure_reason(exc: BaseException) -> str:
    """A short, fixed-vocabulary reason for a message that could not be shown (no peer text in it)."""
    if isinstance(exc, ContentInvalid):
        text = f"it is malformed ({exc})"
    elif isinstance(exc, AttachmentCorrupt):
        text = f"the image is corrupt ({exc})"
    elif isinstance(exc, DecryptionFailed | CryptoError):
        text = "it could not be decrypted"
    elif isinstance(exc, MissingAtRelay):
        text = "its image is no longer at the relay"
    elif isinstance(exc, NetError):
        text = f"its image could not be downloaded ({exc})"
    elif isinstance(exc, OSError):
        text = f"it could not be saved ({exc.strerror or type(exc).__name__})"
    elif isinstance(exc, ClientError):
        text = str(exc)
    else:
        text = f"it could not be processed ({type(exc).__name__})"
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


class DownloadLink(Protocol):
    """What inbound processing needs from the network link (``client.net.Net``)."""

    async def download_blob(self, blob_id: str, *, size: int | None = None,
                            timeout: float = 120) -> bytes: ...


@dataclass
class _Parsed:
    """Step 3's result: the message to store (if any), receipts carried, whether to acknowledge it."""

    message: MessageRecord | None = None
    receipts: list[str] = field(default_factory=list)
    shown: bool = True
    """False for a local failure record (no delivery receipt is sent for it)."""


@dataclass(eq=False, repr=False)
class InboundProcessor:
    """Turns pushed envelopes into stored messages, one envelope at a time (under the core's lock)."""

    store: Store
    shared: Shared
    identity: IdentityKeyPair
    _: KW_ONLY
    sessions: Sessions
    contacts: Contacts
    messages: Messages
    media: MediaStore
    link: DownloadLink
    scanner: ImageScanner
    classifier: ImageClassifierPort
    notices: Callable[[Inbound], bool] = lambda env: False
    """Handles a sealed decision notice from the authority (``client.protect``); True if it was one."""
    count: int = field(default=0, init=False)
    """Envelopes handled so far (``Core.wait_idle`` watches it)."""
    _tries: dict[str, int] = field(default_factory=dict, init=False)

    async def handle(self, env: Inbound) -> None:
        """Handle one pushed envelope; whatever fails costs this envelope only (recorded, then acked)."""
        async with self.shared.lock():
            tries = self._tries.get(env.mid, 0) + 1
            self._tries[env.mid] = tries
            while len(self._tries) > _MAX_TRACKED:
                self._tries.pop(next(iter(self._tries)))
            if tries > MAX_INBOUND_ATTEMPTS:
                self.record_failure(env, f"its processing was interrupted {MAX_INBOUND_ATTEMPTS} times")
            else:
                try:
                    await self.process(env)
                except Exception as exc:
                    with contextlib.suppress(Exception):  # a one-time prekey may be spent in memory only
                        self.sessions.reload_prekeys()
                    self.record_failure(env, failure_reason(exc))
            self._tries.pop(env.mid, None)
        self.count += 1

    def failure_record(self, sender: str, reason: str) -> MessageRecord:
        """A local record standing for a message that could not be shown (a local random id)."""
        text = f"a message from {self.contacts.label(sender)} could not be shown: {reason}"
        return MessageRecord(new_message_id(), sender, "in", "text", self.shared.clock(), "failed", body=text)

    def record_failure(self, env: Inbound, reason: str) -> None:
        """Record an envelope that could not be handled, mark it seen; never raises (it is acked next)."""
        error = f"a message from {env.sender[:32]} could not be shown: {reason}"
        self.shared.note_error(error)
        self.shared.trace("core.inbound_failed")
        try:
            if not ACCOUNT_ID.fullmatch(env.sender):  # a relay that names no account: nothing to show
                self.store.dedupe.mark_seen(env.mid)
                return
            record = self.failure_record(env.sender, reason)
            with self.store.transaction():
                if self.store.contacts.get(env.sender) is None:
                    self.store.contacts.add(env.sender, now=self.shared.clock())
                self.store.messages.add(record)
                self.messages.queue_for_cli(record.msg_id)
                self.store.dedupe.mark_seen(env.mid)
        except Exception as exc:  # e.g. the disk is full: the envelope is still acknowledged
            self.shared.note_error(f"{error} (and it could not be recorded: {type(exc).__name__})")
            return
        self.shared.hub.emit(MessageReceived(self.messages.view(record)))

    async def process(self, env: Inbound) -> None:
        """Steps 1 to 5 for one envelope (lock held); raises on what costs the envelope."""
        if self.notices(env):  # 1. the authority's sealed decision on our submission or appeal
            return
        sender = env.sender
        if not ACCOUNT_ID.fullmatch(sender):
            raise ClientError("the relay named no valid sender")
        contact = self.store.contacts.get(sender)
        prekeys = self.sessions.prekeys  # kept equal to the stored prekeys (reloaded if a transaction fails)
        dec = self._decrypt(env, contact)  # 2.
        if dec is None:
            return
        parsed = await self._parse(sender, dec.plaintext)  # 3.
        existing = self.store.messages.get(parsed.message.msg_id) if parsed.message is not None else None
        if existing is not None and existing.peer != sender:  # another peer's (or our own) message id
            parsed = _Parsed(self.failure_record(sender, "it reused the id of another message"), shown=False)
        fresh, delivered = self._commit(env, dec, contact, parsed)  # 4.
        if dec.new_session:
            self.sessions.prekeys = prekeys
        await self._announce(sender, parsed, fresh, delivered)  # 5.

    def _decrypt(self, env: Inbound, contact: Contact | None) -> Decrypted | None:
        """Step 2: the plaintext and updated session, or None when the envelope is dropped (and seen)."""
        sender = env.sender
        try:
            dec = decrypt_message(self.identity, self.sessions.prekeys, self.store.sessions.load(sender),
                                  env.env, sender_account_id=sender,
                                  known_identity_key=contact.identity_key if contact else None)
        except DuplicateMessage:
            self.store.dedupe.mark_seen(env.mid)
            return None
        except IdentityKeyChanged as exc:
            self.contacts.flag_key_change(sender, exc.old_key, exc.new_key)
            self.store.dedupe.mark_seen(env.mid)
            return None
        self.shared.trace("session.decrypt")
        return dec

    async def _parse(self, sender: str, plaintext: bytes) -> _Parsed:
        """Step 3: the content as a message to store, or receipts (a malformed one: a failure record)."""
        try:
            content = Content.from_bytes(plaintext)
        except DecryptionFailed as exc:  # authentic but malformed: the session advanced, keep it
            self.shared.trace("core.inbound_failed")
            return _Parsed(self.failure_record(sender, failure_reason(exc)), shown=False)
        if content.kind == "text":
            return _Parsed(MessageRecord(content.msg_id, sender, "in", "text", content.sent_at, "received",
                                         body=content.text or ""))
        if content.kind == "image" and content.attachment is not None:
            try:
                return _Parsed(await self.receive_image(sender, content.msg_id, content.sent_at,
                                                        content.attachment))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the session advanced: keep it, show the failure instead
                record = self.failure_record(sender, failure_reason(exc))
                self.shared.note_error(record.body or "")
                self.shared.trace("core.inbound_failed")
                return _Parsed(record, shown=False)
        if content.kind == "receipt":
            return _Parsed(receipts=list(content.receipts))
        return _Parsed()

    def _commit(self, env: Inbound, dec: Decrypted, contact: Contact | None,
                parsed: _Parsed) -> tuple[bool, list[str]]:
        """Step 4: one transaction; returns (the message was new, ids of our messages now delivered)."""
        store, sender, message = self.store, env.sender, parsed.message
        with store.transaction():
            store.sessions.save(dec.record)
            if dec.new_session:
                store.keys.save_prekeys(self.sessions.prekeys)
            if contact is None:
                store.contacts.add(sender, identity_key=dec.record.peer_identity, now=self.shared.clock())
            elif contact.identity_key is None:
                store.contacts.set_identity_key(sender, dec.record.peer_identity)
            fresh = message is not None and store.messages.add(message)
            if fresh and message is not None:
                self.messages.queue_for_cli(message.msg_id)
            delivered = []
            for rid in parsed.receipts:
                old = store.messages.get(rid)
                mine = old is not None and old.direction == "out" and old.peer == sender
                if mine and old is not None and old.state != "delivered":
                    store.messages.update(rid, state="delivered")
                    delivered.append(rid)
            store.dedupe.mark_seen(env.mid)
        return fresh, delivered

    async def _announce(self, sender: str, parsed: _Parsed, fresh: bool, delivered: list[str]) -> None:
        """Step 5: events for the front ends, and a delivery receipt for a shown message."""
        for rid in delivered:
            self.shared.hub.emit(DeliveryChanged(rid, sender, "delivered"))
        message = parsed.message
        if message is None:
            return
        if fresh:
            self.shared.hub.emit(MessageReceived(self.messages.view(message)))
        if not parsed.shown:
            return
        receipt = Content("receipt", new_message_id(), self.shared.clock(), receipts=(message.msg_id,))
        try:
            await self.sessions.enqueue(sender, receipt, None, kind="receipt")
        except (ClientError, NetError) as exc:
            self.shared.note_error(f"could not send a delivery receipt: {exc}")

    async def receive_image(self, sender: str, msg_id: str, sent_at: float,
                            pointer: AttachmentPointer) -> MessageRecord:
        """Download (streamed, capped at the size the pointer implies), verify, decrypt and seal an image.

        Raises on any failure (missing, oversized, size mismatch, corrupt, disk full): the caller
        records the message as one that could not be shown.
        """
        if pointer.size > MAX_IMAGE_SIZE:
            raise AttachmentCorrupt(f"the image is over the {MAX_IMAGE_SIZE // 2**20} MiB limit")
        blob = await self.link.download_blob(pointer.blob_id, size=expected_blob_size(pointer.size),
                                             timeout=DOWNLOAD_TIMEOUT)
        data = decrypt_attachment(blob, pointer)
        del blob
        local = self.media.put(data)
        settings = self.shared.settings()
        verdict: dict[str, Any] | None = None
        if settings.scan_received:
            verdict = await self.scan_received(data)
        if blurs_received(settings.sensitive_content):  # rated on the device, never reported
            rating = await asyncio.to_thread(self.classifier.classify, data, name="received image")
            verdict = {**(verdict or {}), "sensitive": rating.as_dict()}
        return MessageRecord(msg_id, sender, "in", "image", sent_at, "received",
                             attachment=pointer, local_path=local, verdict=verdict)

    async def scan_received(self, data: bytes) -> dict[str, Any]:
        """Scan a received image on the device (setting ``scan-received``): the outcome, never reported."""
        from scanner.errors import ScannerError

        try:
            hashed = await asyncio.to_thread(self.scanner.hash, data, name="received",
                                             dihedral=self.shared.settings().dihedral)
            scan = self.scanner.match(hashed)
        except ScannerError as exc:
            scan = self.scanner.error(exc)
        return {"outcome": scan.outcome, "votes": scan.votes, "snapshot": scan.snapshot_fingerprint,
                "version": scan.snapshot_version, "received_scan": True}
