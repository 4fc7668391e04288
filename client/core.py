"""The Boss: the one place that builds and wires scanner, session, store and net.

Front ends (``client.tui``, ``client.cli.messaging``, the demo bot) hold a :class:`Core` and call
its methods from asyncio; hashing runs in a thread. The core owns no socket (``client.net``
does), no ratchet math (``client.session``), no scan rule (``client.policy``) and no pipeline step
order (``client.outbox``); it moves bytes between them and persists every step in the encrypted
store (``client.store``) before anything is sent.

Key changes. A contact's identity key is pinned on first use. If the relay hands out a bundle
whose key is not the pinned one (or not the account's at all), nothing is encrypted to it: a
:class:`~client.interfaces.KeyChanged` event is emitted and the send fails until the user
verifies the new safety number (``set_verified``). An inbound session setup with a key that does
not belong to the authenticated sender is dropped with the same event.

``trace``: an optional callback told ``"machine.step"`` for each step (pipeline, net, store), as
magic-wormhole's ``set_trace`` does; tests use it to assert the order of operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import cbor2
import nacl.signing

from client.config import Settings, load_settings, save_settings
from client.crypto.attachments import (
    AttachmentPointer,
    EncryptedAttachment,
    decrypt_attachment,
    encrypt_image,
)
from client.crypto.identity import IdentityKeyPair, parse_account_id
from client.crypto.safety import safety_number
from client.crypto.x3dh import PreKeyBundle, PreKeyState
from client.errors import (
    AttachmentCorrupt,
    ClientError,
    CryptoError,
    DecryptionFailed,
    DuplicateMessage,
    IdentityKeyChanged,
    StoreError,
    UnknownContact,
)
from client.interfaces import (
    ConnectionChanged,
    ContactView,
    CoreEvent,
    DeliveryChanged,
    EventHub,
    KeyChanged,
    MessageReceived,
    MessageView,
    ScannerStatus,
    SendOutcome,
    SnapshotChanged,
)
from client.locations import Profile
from client.net import Inbound, MissingAtRelay, Net, NetError, PendingEnvelope
from client.outbox import ImagePipeline, SendError, send_image
from client.policy import PolicyName, ScanResult
from client.report import Report, authority_mailbox, seal_report
from client.scanning import LocalScanner, SnapshotSlot, load_snapshot_view
from client.sensitive import LocalClassifier, SensitiveResult, blurs_received
from client.session import Content, SessionRecord, decrypt_message, initiate_session
from client.store import MessageRecord, OutboxItem, Store
from scanner.hashers.base import HashResult

__all__ = ["Core", "ProfileInUse", "format_invite", "parse_contact_ref"]

LOW_PREKEYS = 20
"""Top the one-time prekeys up at the relay when fewer than this are left."""
INVITE_PREFIX = "psinv:"
CLI_INBOX = "cli_inbox"
"""Store setting: ids of received messages not yet printed by ``pocketscan inbox``."""
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
        "image/bmp": ".bmp", "image/tiff": ".tif"}


class ProfileInUse(ClientError):
    """Another pocketscan process has this profile open (one process per profile)."""


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


def _new_id() -> str:
    return os.urandom(12).hex()


class _StoreOutbox:
    """``net.OutboxPort`` over the store, updating delivery states as the relay acknowledges."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.msg_of: dict[str, str] = {}
        """envelope id -> message id (for delivery state updates)."""

    def pending(self) -> list[PendingEnvelope]:
        items = self.core.store.outbox_pending()
        for item in items:
            if item.meta.get("msg_id"):
                self.msg_of.setdefault(item.envelope_id, item.meta["msg_id"])
        return [PendingEnvelope(i.envelope_id, i.peer, i.payload) for i in items]

    def acknowledged(self, envelope_id: str, server_id: str, ts: float) -> None:
        store = self.core.store
        store.outbox_ack(envelope_id)
        self.core._trace("net.acked")
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = store.get_message(msg_id)
        if message is not None and message.state in ("sending", "waiting"):
            store.update_message(msg_id, state="sent")
            self.core.hub.emit(DeliveryChanged(msg_id, message.peer, "sent"))

    def rejected(self, envelope_id: str, reason: str) -> None:
        store = self.core.store
        store.outbox_ack(envelope_id)
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = store.get_message(msg_id)
        if message is not None:
            store.update_message(msg_id, state="failed")
            self.core.hub.emit(DeliveryChanged(msg_id, message.peer, "failed"))

    def waiting(self, envelope_id: str, reason: str) -> None:
        """The relay refused the envelope for a quota: it stays in the outbox, retried with backoff."""
        msg_id = self.msg_of.get(envelope_id)
        message = self.core.store.get_message(msg_id) if msg_id else None
        if message is not None and message.state == "sending":
            self.core.store.update_message(message.msg_id, state="waiting")
            self.core.hub.emit(DeliveryChanged(message.msg_id, message.peer, "waiting"))


class Core:
    """One unlocked profile: identity, store, scanner and relay link (:meth:`create` / :meth:`open`)."""

    def __init__(self, profile: Profile, store: Store, settings: Settings, *,
                 trace: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 lock: IO[str] | None = None) -> None:
        identity = store.load_identity()
        prekeys = store.load_prekeys()
        if identity is None or prekeys is None:
            raise StoreError("this profile has no account yet: run `pocketscan account create`")
        self.profile = profile
        self.store = store
        self.settings = settings
        self.identity: IdentityKeyPair = identity
        self.prekeys: PreKeyState = prekeys
        self.clock = clock
        self.trace = trace
        self.hub = EventHub()
        self.slot = SnapshotSlot()
        self.scanner = LocalScanner(self.slot, clock=clock)
        self.classifier = LocalClassifier(lambda: self.settings.sensitive_model)
        self.outbox = _StoreOutbox(self)
        self.last_error = ""
        self._lock_file = lock
        self._lock: asyncio.Lock | None = None
        self._started = False
        self.net = Net(
            settings.relay,
            nacl.signing.SigningKey(identity.seed),
            self.outbox,
            on_inbound=self._on_inbound,
            seen=store.seen,
            on_state=self._on_link,
            wants_snapshot=self._wants_snapshot,
            install_snapshot=self.install_snapshot,
            on_connected=self._on_connected,
            on_prekeys_low=lambda left: self._on_connected(),
        )
        self.pipeline = ImagePipeline(
            scanner=self.scanner,
            seal=self._seal_image,
            courier=self,
            policy=lambda: self.settings.policy,
            dihedral=lambda: self.settings.dihedral,
            trace=lambda step: self._trace(f"outbox.{step}"),
            classifier=self.classifier,
            sensitive_content=lambda: self.settings.sensitive_content,
        )
        self._load_saved_snapshot()

    # ----- construction ------------------------------------------------------------------------
    @staticmethod
    def _lock_profile(profile: Profile) -> IO[str]:
        profile.ensure()
        fh = open(profile.lock_file, "a")  # noqa: SIM115 - held open for the core's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ProfileInUse(f"the profile {profile.root} is open in another pocketscan process") from None
        return fh

    @classmethod
    def create(cls, profile: Profile, *, relay: str, authority_pubkey: str, passphrase: str | None,
               name: str = "", policy: PolicyName = "warn", store_cost: tuple[int, int] | None = None,
               trace: Callable[[str], None] | None = None) -> Core:
        """Create a new account in ``profile`` (refuses to overwrite one)."""
        if profile.store_file.exists():
            raise StoreError(f"{profile.root} already holds an account (`pocketscan account show`)")
        settings = Settings(relay=relay, authority_pubkey=authority_pubkey, policy=policy, name=name,
                            passphrase=passphrase is not None).validate()
        lock = cls._lock_profile(profile)
        try:
            kwargs: dict[str, Any] = {}
            if store_cost is not None:
                kwargs = {"opslimit": store_cost[0], "memlimit": store_cost[1]}
            store = Store.create(profile.store_file, passphrase=passphrase, **kwargs)
            identity = IdentityKeyPair.generate()
            with store.transaction():
                store.save_identity(identity)
                store.save_prekeys(PreKeyState.create(identity, time.time()))
                store.set_setting("prekeys_published", False)
            save_settings(profile.settings_file, settings)
        except BaseException:
            lock.close()
            raise
        return cls(profile, store, settings, trace=trace, lock=lock)

    @classmethod
    def open(cls, profile: Profile, *, passphrase: str | None = None, relay: str | None = None,
             trace: Callable[[str], None] | None = None) -> Core:
        """Unlock an existing profile (``relay`` overrides the stored relay URL for this run)."""
        if not profile.store_file.exists():
            raise StoreError(f"no account in {profile.root}: run `pocketscan account create` first")
        settings = load_settings(profile.settings_file)
        if relay:
            settings = replace(settings, relay=relay).validate()
        lock = cls._lock_profile(profile)
        try:
            store = Store.open(profile.store_file, passphrase=passphrase)
        except BaseException:
            lock.close()
            raise
        return cls(profile, store, settings, trace=trace, lock=lock)

    # ----- lifecycle ---------------------------------------------------------------------------
    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(self) -> None:
        """Connect to the relay in the background (returns at once)."""
        if not self._started:
            self._started = True
            await self.net.start()

    async def stop(self) -> None:
        """Disconnect and close the store (everything acknowledged is on disk)."""
        await self.net.stop()
        self._started = False
        self.close()

    def close(self) -> None:
        """Close the store and release the profile lock (for commands that never started the network)."""
        self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        return await self.net.wait_connected(timeout)

    async def wait_idle(self, *, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Wait until the outbox is empty and no envelope arrived for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            before = self._inbound_count
            await asyncio.sleep(quiet)
            if not self.store.outbox_pending() and self._inbound_count == before and self.net.connected:
                return True
        return False

    _inbound_count = 0

    def _trace(self, step: str) -> None:
        if self.trace is not None:
            self.trace(step)

    def subscribe(self, listener: Callable[[CoreEvent], None]) -> None:
        self.hub.subscribe(listener)

    def _on_link(self, connected: bool, detail: str) -> None:
        if not connected:
            self.last_error = detail
        self.hub.emit(ConnectionChanged(connected, detail))

    # ----- identity ----------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return self.identity.account_id

    @property
    def connected(self) -> bool:
        """True while the relay connection is up."""
        return self.net.connected

    @property
    def display_name(self) -> str:
        return self.settings.name or self.account_id[:8]

    def invite_code(self) -> str:
        return format_invite(self.account_id, self.settings.name)

    def _bundle_bytes(self) -> bytes:
        bundle = self.prekeys.bundle(self.identity.public)
        return bytes(cbor2.dumps(bundle.to_dict()))

    def _otk_bytes(self, keys: list[Any]) -> list[bytes]:
        return [bytes(cbor2.dumps([k.key_id, k.keypair.public])) for k in keys]

    async def _on_connected(self) -> None:
        """Per connection: publish or top up prekeys, rotate the signed prekey when due."""
        async with self.lock:
            now = self.clock()
            if not self.store.get_setting("prekeys_published", False):
                await self.net.publish_prekeys(self._bundle_bytes(),
                                               self._otk_bytes(list(self.prekeys.one_time.values())),
                                               replace=True)
                self.store.set_setting("prekeys_published", True)
                self._trace("net.prekeys_published")
                return
            changed = False
            if self.prekeys.needs_rotation(now):
                self.prekeys.rotate(self.identity, now)
                self.prekeys.prune(now)
                changed = True
            left = await self.net.count_prekeys()
            fresh = []
            if left < LOW_PREKEYS:
                fresh = self.prekeys.replenish(len(self.prekeys.one_time) + max(0, 100 - left))
            if changed or fresh:
                self.store.save_prekeys(self.prekeys)
                await self.net.publish_prekeys(self._bundle_bytes(), self._otk_bytes(fresh), replace=False)

    async def publish_now(self, timeout: float = 10.0) -> bool:
        """Connect and make sure our prekeys are at the relay (account creation)."""
        await self.start()
        if not await self.wait_connected(timeout):
            return False
        for _ in range(int(timeout * 20)):
            if self.store.get_setting("prekeys_published", False):
                return True
            await asyncio.sleep(0.05)
        return False

    # ----- contacts ----------------------------------------------------------------------------
    def _key_changed(self) -> set[str]:
        return set(self.store.get_setting("key_changed", []))

    def _flag_key_change(self, peer: str, old: bytes | None, new: bytes) -> None:
        flagged = self._key_changed() | {peer}
        self.store.set_setting("key_changed", sorted(flagged))
        pending = dict(self.store.get_setting("pending_keys", {}))
        pending[peer] = new
        self.store.set_setting("pending_keys", pending)
        self._trace("core.key_changed")
        self.hub.emit(KeyChanged(peer, (old or b"").hex()[:16], new.hex()[:16]))

    def _contact_view(self, c: Any) -> ContactView:
        flagged = c.account_id in self._key_changed()
        return ContactView(c.account_id, c.name or "", c.unread, c.verified, flagged)

    def contacts(self) -> list[ContactView]:
        flagged = self._key_changed()
        return [ContactView(c.account_id, c.name or "", c.unread, c.verified, c.account_id in flagged)
                for c in self.store.list_contacts()]

    def resolve(self, name_or_id: str) -> str:
        """Account id of a contact given by name or id (raises UnknownContact)."""
        return self.store.find_contact(name_or_id).account_id

    async def add_contact(self, account_or_invite: str, name: str = "") -> ContactView:
        """Add a contact by account id or invite code (no network needed)."""
        try:
            account, suggested = parse_contact_ref(account_or_invite)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        if account == self.account_id:
            raise ClientError("that is your own account id")
        contact = self.store.add_contact(account, name=(name or suggested or None), now=self.clock())
        self._trace("store.contact_added")
        return self._contact_view(contact)

    def mark_read(self, peer: str) -> None:
        self.store.mark_read(peer)

    def safety_number(self, peer: str) -> str:
        """60 digits, or "" while the contact's identity key is unknown (before any exchange)."""
        pending = self.store.get_setting("pending_keys", {}).get(peer)
        contact = self.store.get_contact(peer)
        key = pending or (contact.identity_key if contact else None)
        return "" if key is None else safety_number(self.identity.public, key)

    def set_verified(self, peer: str, verified: bool) -> None:
        """Mark the safety number verified (accepting a changed key, which starts a new session)."""
        pending = dict(self.store.get_setting("pending_keys", {}))
        with self.store.transaction():
            if verified and peer in pending:
                from client.crypto.identity import account_id_from_public_key

                new = pending.pop(peer)
                if account_id_from_public_key(new) == peer:
                    self.store.set_identity_key(peer, new, accept_change=True)
                self.store.delete_session(peer)
                self.store.set_setting("pending_keys", pending)
            if verified:
                self.store.set_setting("key_changed", sorted(self._key_changed() - {peer}))
            self.store.set_verified(peer, verified)

    # ----- messages ----------------------------------------------------------------------------
    @staticmethod
    def _view(m: MessageRecord) -> MessageView:
        verdict = m.verdict or {}
        label = ""
        if m.kind == "image":
            dims = ""
            if m.attachment is not None and m.attachment.width and m.attachment.height:
                dims = f" {m.attachment.width}x{m.attachment.height}"
            label = (verdict.get("name") or "photo") + dims
        rating = SensitiveResult.from_dict(verdict.get("sensitive"))
        return MessageView(m.msg_id, m.peer, m.direction, m.kind, text=m.body or "", path=m.local_path,
                           state=m.state, sent_at=m.sent_at, verdict=verdict.get("outcome"),
                           votes=verdict.get("votes"), label=label,
                           sensitive=rating is not None and rating.flagged)

    def messages(self, peer: str, *, limit: int = 500) -> list[MessageView]:
        return [self._view(m) for m in self.store.list_messages(peer, limit=limit)]

    def message(self, msg_id: str) -> MessageView | None:
        m = self.store.get_message(msg_id)
        return None if m is None else self._view(m)

    async def _session_for(self, peer: str) -> SessionRecord:
        """The session with ``peer``, set up from their prekey bundle if needed (lock held)."""
        record = self.store.load_session(peer)
        if record is not None and record.sessions:
            return record
        contact = self.store.require_contact(peer)
        if peer in self._key_changed():
            raise SendError(f"the safety number of {contact.label} changed: verify it before sending")
        raw_bundle, otk = await self.net.fetch_bundle(peer)
        self._trace("net.bundle_fetched")
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
            self._flag_key_change(peer, exc.old_key, exc.new_key)
            raise SendError(f"the safety number of {contact.label} changed: nothing was sent; "
                            "verify the new safety number first") from None
        if contact.identity_key is None:
            self.store.set_identity_key(peer, bundle.identity_key)
        return record

    async def _enqueue(self, peer: str, content: Content, message: MessageRecord | None, *,
                       kind: str) -> None:
        """Encrypt ``content`` for ``peer`` and persist session, message and envelope together (lock held)."""
        record = await self._session_for(peer)
        self._trace("session.encrypt")
        payload = record.encrypt(content.to_bytes())
        envelope_id = os.urandom(16).hex()
        meta: dict[str, Any] = {"kind": kind}
        if message is not None:
            meta["msg_id"] = message.msg_id
            self.outbox.msg_of[envelope_id] = message.msg_id
        with self.store.transaction():
            self.store.save_session(record)
            if message is not None:
                self.store.add_message(message)
            self.store.outbox_put(OutboxItem(envelope_id, peer, payload, self.clock(), 0, meta))
        self._trace("net.send")
        self.net.kick()

    async def send_text(self, peer: str, text: str) -> SendOutcome:
        """Send a text message (text is not scanned)."""
        if not text:
            return SendOutcome("error", error="empty message")
        if len(text.encode()) > 64 * 1024:
            return SendOutcome("error", error="message too long (64 KiB at most)")
        now = self.clock()
        msg_id = _new_id()
        message = MessageRecord(msg_id, peer, "out", "text", now, "sending", body=text)
        try:
            async with self.lock:
                await self._enqueue(peer, Content("text", msg_id, now, text=text), message, kind="text")
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))
        return SendOutcome("sent", self._view(message))

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome:
        """Send an image through the scan-before-encrypt pipeline (``client.outbox``)."""
        try:
            self.store.require_contact(peer)
            return await send_image(self.pipeline, peer, Path(path), confirmed=confirmed)
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))

    async def forward_image(self, msg_id: str, peer: str, *, confirmed: bool = False) -> SendOutcome:
        """Forward a stored image: its bytes go through the same pipeline (scanned again, for this send)."""
        message = self.store.get_message(msg_id)
        if message is None or message.kind != "image" or not message.local_path:
            return SendOutcome("error", error="no such image to forward")
        try:
            data = Path(message.local_path).read_bytes()
            return await send_image(self.pipeline, peer, data=data, name=Path(message.local_path).name,
                                    confirmed=confirmed)
        except (ClientError, NetError, OSError) as exc:
            return SendOutcome("error", error=str(exc))

    # ----- the pipeline's courier (outbox.Courier) ---------------------------------------------
    def _seal_image(self, data: bytes, verdict: Any, *, content_type: str, width: int | None,
                    height: int | None) -> EncryptedAttachment:
        self._trace("session.encrypt_image")
        return encrypt_image(data, verdict, content_type=content_type, width=width, height=height)

    async def upload_blob(self, blob: bytes) -> str:
        self._trace("net.upload_blob")
        return await self.net.upload_blob(blob)

    def _save_media(self, msg_id: str, data: bytes, content_type: str) -> Path:
        self.profile.media_dir.mkdir(parents=True, exist_ok=True)
        path = self.profile.media_dir / f"{msg_id}{_EXT.get(content_type, '.bin')}"
        tmp = path.with_suffix(path.suffix + ".part")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return path

    async def deliver_image(self, peer: str, encrypted: EncryptedAttachment, blob_id: str, *, data: bytes,
                            name: str, scan: ScanResult) -> MessageView:
        now = self.clock()
        msg_id = _new_id()
        pointer = replace(encrypted.pointer, blob_id=blob_id)
        local = self._save_media(msg_id, data, pointer.content_type)
        verdict = {"outcome": scan.outcome, "votes": scan.votes, "snapshot": scan.snapshot_fingerprint,
                   "version": scan.snapshot_version, "name": name}
        message = MessageRecord(msg_id, peer, "out", "image", now, "sending", attachment=pointer,
                                local_path=str(local), verdict=verdict)
        async with self.lock:
            content = Content("image", msg_id, now, attachment=pointer)
            await self._enqueue(peer, content, message, kind="image")
        return self._view(message)

    async def send_report(self, peer: str, data: bytes, scan: ScanResult, hashed: HashResult | None) -> None:
        """Seal a report to the authority and queue it to the authority's mailbox (relay cannot read it)."""
        key = bytes.fromhex(self.settings.authority_pubkey)
        report = Report(reporter=self.account_id, recipient=peer, created_at=self.clock(),
                        snapshot_fingerprint=scan.snapshot_fingerprint,
                        snapshot_version=scan.snapshot_version,
                        votes=scan.votes, quality=scan.quality, pdq_hash=hashed.hex if hashed else None,
                        image_sha256=hashlib.sha256(data).hexdigest())
        envelope = seal_report(report, key)
        envelope_id = os.urandom(16).hex()
        self.store.outbox_put(OutboxItem(envelope_id, authority_mailbox(key), envelope, self.clock(), 0,
                                         {"kind": "report"}))
        self._trace("net.send_report")
        self.net.kick()

    # ----- inbound -----------------------------------------------------------------------------
    async def _on_inbound(self, env: Inbound) -> None:
        async with self.lock:
            await self._process(env)
        self._inbound_count += 1

    async def _process(self, env: Inbound) -> None:
        store = self.store
        sender = env.sender
        contact = store.get_contact(sender)
        prekeys = store.load_prekeys() or self.prekeys
        try:
            dec = decrypt_message(self.identity, prekeys, store.load_session(sender), env.env,
                                  sender_account_id=sender,
                                  known_identity_key=contact.identity_key if contact else None)
            content = Content.from_bytes(dec.plaintext)
        except DuplicateMessage:
            store.mark_seen(env.mid)
            return
        except IdentityKeyChanged as exc:
            self._flag_key_change(sender, exc.old_key, exc.new_key)
            store.mark_seen(env.mid)
            return
        except (DecryptionFailed, CryptoError) as exc:
            self.last_error = f"dropped an undecryptable message from {sender}: {exc}"
            self._trace("session.decrypt_failed")
            store.mark_seen(env.mid)
            return
        self._trace("session.decrypt")
        message: MessageRecord | None = None
        receipts: list[str] = []
        if content.kind == "text":
            message = MessageRecord(content.msg_id, sender, "in", "text", content.sent_at, "received",
                                    body=content.text or "")
        elif content.kind == "image" and content.attachment is not None:
            message = await self._receive_image(sender, content.msg_id, content.sent_at, content.attachment)
        elif content.kind == "receipt":
            receipts = list(content.receipts)
        with store.transaction():
            store.save_session(dec.record)
            if dec.new_session:
                store.save_prekeys(prekeys)
            if contact is None:
                store.add_contact(sender, identity_key=dec.record.peer_identity, now=self.clock())
            elif contact.identity_key is None:
                store.set_identity_key(sender, dec.record.peer_identity)
            fresh = message is not None and store.add_message(message)
            if fresh and message is not None:
                queue = list(store.get_setting(CLI_INBOX, []))[-9_999:]
                store.set_setting(CLI_INBOX, [*queue, message.msg_id])
            delivered = []
            for rid in receipts:
                old = store.get_message(rid)
                mine = old is not None and old.direction == "out" and old.peer == sender
                if mine and old is not None and old.state != "delivered":
                    store.update_message(rid, state="delivered")
                    delivered.append(rid)
            store.mark_seen(env.mid)
        if dec.new_session:
            self.prekeys = prekeys
        for rid in delivered:
            self.hub.emit(DeliveryChanged(rid, sender, "delivered"))
        if message is not None:
            if fresh:
                self.hub.emit(MessageReceived(self._view(message)))
            receipt = Content("receipt", _new_id(), self.clock(), receipts=(message.msg_id,))
            try:
                await self._enqueue(sender, receipt, None, kind="receipt")
            except (ClientError, NetError) as exc:
                self.last_error = f"could not send a delivery receipt: {exc}"

    async def _receive_image(self, sender: str, msg_id: str, sent_at: float,
                             pointer: AttachmentPointer) -> MessageRecord:
        """Download, verify and decrypt an image (raises ConnectionLost-like NetError to retry later)."""
        body = None
        local: str | None = None
        verdict: dict[str, Any] | None = None
        try:
            blob = await self.net.download_blob(pointer.blob_id)
            data = decrypt_attachment(blob, pointer)
        except MissingAtRelay as exc:
            body = f"[image unavailable: {exc}]"
        except AttachmentCorrupt as exc:
            body = f"[image rejected: {exc}]"
        else:
            local = str(self._save_media(msg_id, data, pointer.content_type))
            if self.settings.scan_received:
                verdict = await self._scan_received(data)
            if blurs_received(self.settings.sensitive_content):  # rated on the device, never reported
                rating = await asyncio.to_thread(self.classifier.classify, data, name="received image")
                verdict = {**(verdict or {}), "sensitive": rating.as_dict()}
        return MessageRecord(msg_id, sender, "in", "image", sent_at, "received", body=body,
                             attachment=pointer, local_path=local, verdict=verdict)

    async def _scan_received(self, data: bytes) -> dict[str, Any]:
        from scanner.errors import ScannerError

        try:
            hashed = await asyncio.to_thread(self.scanner.hash, data, name="received",
                                             dihedral=self.settings.dihedral)
            scan = self.scanner.match(hashed)
        except ScannerError as exc:
            scan = self.scanner.error(exc)
        return {"outcome": scan.outcome, "votes": scan.votes, "snapshot": scan.snapshot_fingerprint,
                "version": scan.snapshot_version, "received_scan": True}

    def take_cli_inbox(self) -> list[MessageView]:
        """Messages received since the last call (for ``pocketscan inbox``), oldest first."""
        ids = list(self.store.get_setting(CLI_INBOX, []))
        out = [v for v in (self.message(i) for i in ids) if v is not None]
        self.store.set_setting(CLI_INBOX, [])
        return out

    # ----- scanner and snapshots ---------------------------------------------------------------
    def _authority_key(self) -> bytes:
        return bytes.fromhex(self.settings.authority_pubkey) if self.settings.authority_pubkey else b""

    def _wants_snapshot(self, version: int) -> bool:
        current = self.slot.current
        return current is None or version > current.version

    def install_snapshot(self, data: bytes) -> None:
        """Verify ``data`` against the pinned authority key and swap it in (raises if refused)."""
        key = self._authority_key()
        if not key:
            raise ClientError("no authority key configured: cannot verify snapshots")
        floor = int(self.store.get_setting("snapshot_version", 0))
        view = load_snapshot_view(data, key, now=self.clock(), min_version=floor)
        tmp = self.profile.snapshot_file.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, self.profile.snapshot_file)
        if self.slot.swap(view):
            self.store.set_setting("snapshot_version", view.version)
            self._trace("scanner.snapshot_installed")
            self.hub.emit(SnapshotChanged(self.scanner_status()))

    def _load_saved_snapshot(self) -> None:
        path = self.profile.snapshot_file
        key = self._authority_key()
        if not path.exists() or not key:
            return
        with contextlib.suppress(Exception):  # a damaged file is refetched from the relay
            view = load_snapshot_view(path.read_bytes(), key, now=self.clock(),
                                      min_version=int(self.store.get_setting("snapshot_version", 0)))
            self.slot.swap(view)

    def scanner_status(self) -> ScannerStatus:
        snap = self.slot.current
        key = self._authority_key()
        key_id = hashlib.sha256(key).hexdigest()[:16] if key else ""
        if snap is None:
            return ScannerStatus(self.settings.policy, self.settings.dihedral, authority_key_id=key_id,
                                 note="waiting for a snapshot")
        return ScannerStatus(self.settings.policy, self.settings.dihedral, snap.version, snap.fingerprint,
                             snap.created_at, snap.expires_at, snap.min_votes,
                             snap.authority_key_id or key_id)

    async def set_policy(self, policy: PolicyName) -> None:
        self.settings = replace(self.settings, policy=policy).validate()
        save_settings(self.profile.settings_file, self.settings)
        self.hub.emit(SnapshotChanged(self.scanner_status()))

    def describe(self) -> dict[str, Any]:
        """What ``pocketscan account show`` prints."""
        status = self.scanner_status()
        return {
            "account_id": self.account_id,
            "name": self.settings.name,
            "invite": self.invite_code(),
            "relay": self.settings.relay,
            "authority_key_id": status.authority_key_id,
            "policy": self.settings.policy,
            "dihedral": self.settings.dihedral,
            "scan_received": self.settings.scan_received,
            "sensitive_content": self.settings.sensitive_content,
            "passphrase": self.settings.passphrase,
            "snapshot_version": status.version,
            "snapshot_fingerprint": status.fingerprint,
            "contacts": len(self.store.list_contacts()),
            "outbox_pending": len(self.store.outbox_pending()),
            "profile": str(self.profile.root),
        }


__all__ += ["UnknownContact"]
