"""The Boss: the one place that builds and wires scanner, session, store and net.

Front ends (``client.tui``, ``client.cli.messaging``, the demo bot) hold a :class:`Core` and call
its methods from asyncio; hashing runs in a thread. The core owns no socket (``client.net``
does), no ratchet math (``client.session``), no scan rule (``client.policy``) and no pipeline step
order (``client.image_pipeline``); it moves bytes between them and persists every step in the encrypted
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
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import cbor2
import nacl.signing

from client.config import Settings, load_settings, save_settings
from client.content import MAX_IMAGE_SIZE, ContentInvalid, expected_blob_size, safe_dimension
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
from client.image_pipeline import ImagePipeline, SendError, send_image
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
from client.media_store import MediaError, MediaStore, is_media_ref
from client.net import Inbound, MissingAtRelay, Net, NetError, PendingEnvelope
from client.policy import PolicyName, ScanOutcome, decide
from client.protect import receive_notice
from client.report import Report, authority_mailbox, seal_report
from client.scanning import LocalScanner, SnapshotSlot, load_snapshot_view
from client.sensitive import LocalClassifier, SensitiveResult, blurs_received
from client.session import Content, SessionRecord, decrypt_message, initiate_session
from client.store import MessageRecord, OutboxItem, Store
from client.vouchers.issuer import VoucherIssuer, voucher_delay, wants_synthetic
from scanner.errors import SnapshotInvalid
from scanner.hashers.base import HashResult

__all__ = ["Core", "ProfileInUse", "format_invite", "open_settings", "parse_contact_ref"]

SETTINGS_MAC = "settings-mac"
"""Store flag (and key purpose): this profile's settings.json carries a MAC under the store's key."""

MAX_INBOUND_ATTEMPTS = 3
"""An envelope whose processing was interrupted this often (e.g. the link dropped each time) is recorded
as failed and acknowledged instead of being retried forever."""
DOWNLOAD_TIMEOUT = 60.0
"""Longest wait for one attachment download while an envelope is being processed."""
LOW_PREKEYS = 20
"""Top the one-time prekeys up at the relay when fewer than this are left."""
INVITE_PREFIX = "psinv:"
CLI_INBOX = "cli_inbox"
"""Store setting: ids of received messages not yet printed by ``pocketscan inbox``."""


def open_settings(profile: Profile, store: Store) -> Settings:
    """The profile's settings, authenticated under the store's key (raises ``SettingsTampered``).

    A profile made before settings were authenticated has a file without a MAC: it is accepted once
    and rewritten with one; from then on a missing MAC is refused like a wrong one.
    """
    key = store.derived_key(SETTINGS_MAC)
    if store.settings.get(SETTINGS_MAC, False):
        return load_settings(profile.settings_file, key=key)
    stored = load_settings(profile.settings_file, env=False, key=key, require_mac=False)
    save_settings(profile.settings_file, stored, key=key)
    store.settings.set(SETTINGS_MAC, True)
    return load_settings(profile.settings_file, key=key)


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


_ACCOUNT_ID = re.compile(r"[a-z2-7]{32}")


def _failure_reason(exc: BaseException) -> str:
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


class _StoreOutbox:
    """``net.OutboxPort`` over the store, updating delivery states as the relay acknowledges."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.msg_of: dict[str, str] = {}
        """envelope id -> message id (for delivery state updates)."""

    def pending(self) -> list[PendingEnvelope]:
        items = self.core.outbox_due()
        for item in items:
            if item.meta.get("msg_id"):
                self.msg_of.setdefault(item.envelope_id, item.meta["msg_id"])
        return [PendingEnvelope(i.envelope_id, i.peer, i.payload) for i in items]

    def acknowledged(self, envelope_id: str, server_id: str, ts: float) -> None:
        store = self.core.store
        store.outbox.ack(envelope_id)
        self.core._trace("net.acked")
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = store.messages.get(msg_id)
        if message is not None and message.state in ("sending", "waiting"):
            store.messages.update(msg_id, state="sent")
            self.core.hub.emit(DeliveryChanged(msg_id, message.peer, "sent"))

    def rejected(self, envelope_id: str, reason: str) -> None:
        store = self.core.store
        store.outbox.ack(envelope_id)
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = store.messages.get(msg_id)
        if message is not None:
            store.messages.update(msg_id, state="failed")
            self.core.hub.emit(DeliveryChanged(msg_id, message.peer, "failed"))

    def waiting(self, envelope_id: str, reason: str) -> None:
        """The relay refused the envelope for a quota: it stays in the outbox, retried with backoff."""
        msg_id = self.msg_of.get(envelope_id)
        message = self.core.store.messages.get(msg_id) if msg_id else None
        if message is not None and message.state == "sending":
            self.core.store.messages.update(message.msg_id, state="waiting")
            self.core.hub.emit(DeliveryChanged(message.msg_id, message.peer, "waiting"))


class Core:
    """One unlocked profile: identity, store, scanner and relay link (:meth:`create` / :meth:`open`)."""

    def __init__(self, profile: Profile, store: Store, settings: Settings, *,
                 trace: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 lock: IO[str] | None = None) -> None:
        identity = store.keys.load_identity()
        prekeys = store.keys.load_prekeys()
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
            seen=store.dedupe.seen,
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
            trace=lambda step: self._trace(f"pipeline.{step}"),
            classifier=self.classifier,
            sensitive_content=lambda: self.settings.sensitive_content,
            on_clean_send=self._maybe_synthetic_voucher,
            decide=lambda scan, policy: decide(scan, policy, report_threshold=self.settings.report_threshold),
        )
        self.media = MediaStore(profile.media_dir, store.derived_key("media"))
        self._inbound_tries: dict[str, int] = {}
        self.vouchers = VoucherIssuer(store.settings, identity.account_id)
        self._timers: set[str] = set()
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
                store.keys.save_identity(identity)
                store.keys.save_prekeys(PreKeyState.create(identity, time.time()))
                store.settings.set("prekeys_published", False)
                store.settings.set(SETTINGS_MAC, True)
            save_settings(profile.settings_file, settings, key=store.derived_key(SETTINGS_MAC))
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
        lock = cls._lock_profile(profile)
        try:
            store = Store.open(profile.store_file, passphrase=passphrase)
            try:
                settings = open_settings(profile, store)
                if relay:
                    settings = replace(settings, relay=relay).validate()
                core = cls(profile, store, settings, trace=trace, lock=lock)
            except BaseException:
                store.close()
                raise
        except BaseException:
            lock.close()
            raise
        core._adopt_plaintext_media()
        return core

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

    def _oprf(self) -> Any:
        """The OPRF service client (account key authenticates), when the settings name a service."""
        url = self.settings.oprf
        if not url:
            return None
        client = getattr(self, "_oprf_client", None)
        if client is None or client.url != url:
            from scanner.oprf_client import OprfServiceClient

            client = OprfServiceClient(url, signing_seed=self.identity.seed)
            self._oprf_client = client
        return client

    def close(self) -> None:
        """Close the store and release the profile lock (for commands that never started the network)."""
        client = getattr(self, "_oprf_client", None)
        if client is not None:
            client.close()
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
            if (not self.outbox_due() and not self.awaiting_session()
                    and self._inbound_count == before and self.net.connected):
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
        """Per connection: publish or top up prekeys, rotate the signed prekey when due, send queued texts."""
        async with self.lock:
            if self.store.settings.get(self._AWAITING, []):
                await self._drain_awaiting()
            now = self.clock()
            if not self.store.settings.get("prekeys_published", False):
                await self.net.publish_prekeys(self._bundle_bytes(),
                                               self._otk_bytes(list(self.prekeys.one_time.values())),
                                               replace=True)
                self.store.settings.set("prekeys_published", True)
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
                self.store.keys.save_prekeys(self.prekeys)
                await self.net.publish_prekeys(self._bundle_bytes(), self._otk_bytes(fresh), replace=False)

    async def publish_now(self, timeout: float = 10.0) -> bool:
        """Connect and make sure our prekeys are at the relay (account creation)."""
        await self.start()
        if not await self.wait_connected(timeout):
            return False
        for _ in range(int(timeout * 20)):
            if self.store.settings.get("prekeys_published", False):
                return True
            await asyncio.sleep(0.05)
        return False

    # ----- contacts ----------------------------------------------------------------------------
    def _key_changed(self) -> set[str]:
        return set(self.store.settings.get("key_changed", []))

    def _flag_key_change(self, peer: str, old: bytes | None, new: bytes) -> None:
        flagged = self._key_changed() | {peer}
        self.store.settings.set("key_changed", sorted(flagged))
        pending = dict(self.store.settings.get("pending_keys", {}))
        pending[peer] = new
        self.store.settings.set("pending_keys", pending)
        self._trace("core.key_changed")
        self.hub.emit(KeyChanged(peer, (old or b"").hex()[:16], new.hex()[:16]))

    def _contact_view(self, c: Any) -> ContactView:
        flagged = c.account_id in self._key_changed()
        return ContactView(c.account_id, c.name or "", c.unread, c.verified, flagged)

    def contacts(self) -> list[ContactView]:
        flagged = self._key_changed()
        return [ContactView(c.account_id, c.name or "", c.unread, c.verified, c.account_id in flagged)
                for c in self.store.contacts.all()]

    def resolve(self, name_or_id: str) -> str:
        """Account id of a contact given by name or id (raises UnknownContact)."""
        return self.store.contacts.find(name_or_id).account_id

    async def add_contact(self, account_or_invite: str, name: str = "") -> ContactView:
        """Add a contact by account id or invite code (no network needed)."""
        try:
            account, suggested = parse_contact_ref(account_or_invite)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        if account == self.account_id:
            raise ClientError("that is your own account id")
        contact = self.store.contacts.add(account, name=(name or suggested or None), now=self.clock())
        self._trace("store.contact_added")
        return self._contact_view(contact)

    def mark_read(self, peer: str) -> None:
        self.store.contacts.mark_read(peer)

    def safety_number(self, peer: str) -> str:
        """60 digits, or "" while the contact's identity key is unknown (before any exchange)."""
        pending = self.store.settings.get("pending_keys", {}).get(peer)
        contact = self.store.contacts.get(peer)
        key = pending or (contact.identity_key if contact else None)
        return "" if key is None else safety_number(self.identity.public, key)

    def set_verified(self, peer: str, verified: bool) -> None:
        """Mark the safety number verified (accepting a changed key, which starts a new session)."""
        pending = dict(self.store.settings.get("pending_keys", {}))
        with self.store.transaction():
            if verified and peer in pending:
                from client.crypto.identity import account_id_from_public_key

                new = pending.pop(peer)
                if account_id_from_public_key(new) == peer:
                    self.store.contacts.set_identity_key(peer, new, accept_change=True)
                self.store.sessions.delete(peer)
                self.store.settings.set("pending_keys", pending)
            if verified:
                self.store.settings.set("key_changed", sorted(self._key_changed() - {peer}))
            self.store.contacts.set_verified(peer, verified)

    # ----- messages ----------------------------------------------------------------------------
    def _view(self, m: MessageRecord) -> MessageView:
        """The front ends' view of a stored message (total: a hostile stored row never raises here)."""
        try:
            return self._view_of(m)
        except Exception:
            return MessageView(str(m.msg_id)[:64], m.peer, "in", "text", state="failed",
                               text="a stored message could not be shown: it is malformed")

    def _view_of(self, m: MessageRecord) -> MessageView:
        verdict = m.verdict if isinstance(m.verdict, dict) else {}
        label = ""
        if m.kind == "image":
            dims = ""
            width = safe_dimension(m.attachment.width) if m.attachment is not None else None
            height = safe_dimension(m.attachment.height) if m.attachment is not None else None
            if width and height:
                dims = f" {width}x{height}"
            name = verdict.get("name")
            label = (name if isinstance(name, str) and name else "photo")[:128] + dims
        path = str(self.media.path(m.local_path)) if is_media_ref(m.local_path) else None
        outcome, votes = verdict.get("outcome"), verdict.get("votes")
        rating = SensitiveResult.from_dict(verdict.get("sensitive"))
        return MessageView(m.msg_id, m.peer, m.direction, m.kind, text=m.body or "", path=path,
                           state=m.state, sent_at=float(m.sent_at),
                           verdict=outcome if isinstance(outcome, str) else None,
                           votes=votes if isinstance(votes, int) and 0 <= votes <= 1024 else None,
                           label=label, sensitive=rating is not None and rating.flagged)

    def messages(self, peer: str, *, limit: int = 500) -> list[MessageView]:
        return [self._view(m) for m in self.store.messages.conversation(peer, limit=limit)]

    def image_bytes(self, msg_id: str) -> bytes | None:
        """A stored image, decrypted in memory (None if there is none or it cannot be opened)."""
        message = self.store.messages.get(msg_id)
        if message is None or message.kind != "image" or not is_media_ref(message.local_path):
            return None
        assert message.local_path is not None
        try:
            return self.media.get(message.local_path)
        except MediaError as exc:
            self.last_error = f"image {msg_id} cannot be shown: {exc}"
            return None

    def message(self, msg_id: str) -> MessageView | None:
        m = self.store.messages.get(msg_id)
        return None if m is None else self._view(m)

    async def _session_for(self, peer: str) -> SessionRecord:
        """The session with ``peer``, set up from their prekey bundle if needed (lock held)."""
        record = self.store.sessions.load(peer)
        if record is not None and record.sessions:
            return record
        contact = self.store.contacts.require(peer)
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
            self.store.contacts.set_identity_key(peer, bundle.identity_key)
        return record

    async def _enqueue(self, peer: str, content: Content, message: MessageRecord | None, *,
                       kind: str, msg_id: str | None = None) -> None:
        """Encrypt ``content`` for ``peer`` and persist session, message and envelope together (lock held)."""
        record = await self._session_for(peer)
        self._trace("session.encrypt")
        payload = record.encrypt(content.to_bytes())
        envelope_id = os.urandom(16).hex()
        meta: dict[str, Any] = {"kind": kind}
        msg_id = message.msg_id if message is not None else msg_id
        if msg_id is not None:
            meta["msg_id"] = msg_id
            self.outbox.msg_of[envelope_id] = msg_id
        with self.store.transaction():
            self.store.sessions.save(record)
            if message is not None:
                self.store.messages.add(message)
            self.store.outbox.put(OutboxItem(envelope_id, peer, payload, self.clock(), 0, meta))
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
                if not self.net.connected and not self._has_session(peer):
                    return self._queue_for_session(message)
                await self._enqueue(peer, Content("text", msg_id, now, text=text), message, kind="text")
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))
        return SendOutcome("sent", self._view(message))

    # Texts written while offline to a contact without a session yet: the session needs the contact's
    # prekey bundle from the relay, so the message waits (in the encrypted store) for the next connection.
    _AWAITING = "awaiting_session"

    def _has_session(self, peer: str) -> bool:
        record = self.store.sessions.load(peer)
        return record is not None and bool(record.sessions)

    def _queue_for_session(self, message: MessageRecord) -> SendOutcome:
        self.store.contacts.require(message.peer)
        with self.store.transaction():
            self.store.messages.add(message)
            waiting = self.store.settings.get(self._AWAITING, [])
            self.store.settings.set(self._AWAITING, [*waiting, message.msg_id])
        self._trace("outbox.queued_for_session")
        return SendOutcome("queued", self._view(message))

    def awaiting_session(self) -> int:
        """How many queued texts still wait for a connection to set up their session."""
        return len(self.store.settings.get(self._AWAITING, []))

    async def _drain_awaiting(self) -> None:
        """Encrypt and enqueue the texts queued while offline (lock held; called once connected)."""
        for msg_id in list(self.store.settings.get(self._AWAITING, [])):
            message = self.store.messages.get(msg_id)
            if message is not None and message.kind == "text" and message.state == "sending":
                content = Content("text", msg_id, message.sent_at, text=message.body or "")
                try:
                    await self._enqueue(message.peer, content, None, kind="text", msg_id=msg_id)
                except (ClientError, NetError) as exc:  # this message fails; the others still go
                    self.store.messages.update(msg_id, state="failed")
                    self.hub.emit(DeliveryChanged(msg_id, message.peer, "failed"))
                    self.last_error = str(exc)
            left = [m for m in self.store.settings.get(self._AWAITING, []) if m != msg_id]
            self.store.settings.set(self._AWAITING, left)

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome:
        """Send an image through the scan-before-encrypt pipeline (``client.image_pipeline``)."""
        try:
            self.store.contacts.require(peer)
            return await send_image(self.pipeline, peer, Path(path), confirmed=confirmed)
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))

    async def forward_image(self, msg_id: str, peer: str, *, confirmed: bool = False) -> SendOutcome:
        """Forward a stored image: its bytes go through the same pipeline (scanned again, for this send)."""
        data = self.image_bytes(msg_id)
        message = self.store.messages.get(msg_id)
        if data is None or message is None:
            return SendOutcome("error", error="no such image to forward")
        name = (message.verdict or {}).get("name") if isinstance(message.verdict, dict) else None
        try:
            return await send_image(self.pipeline, peer, data=data,
                                    name=name if isinstance(name, str) and name else "image",
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

    def _save_media(self, data: bytes) -> str:
        """Seal an image under the store's media key; return its local random reference."""
        return self.media.put(data)

    def _adopt_plaintext_media(self) -> None:
        """Seal clear images an older pocketscan left in ``media/`` (once per profile)."""
        if self.store.settings.get("media_sealed", False):
            return
        for contact in self.store.contacts.all():
            for m in self.store.messages.conversation(contact.account_id):
                if m.kind != "image" or not m.local_path or is_media_ref(m.local_path):
                    continue
                ref = self.media.adopt_plaintext(Path(m.local_path))
                self.store.messages.update(m.msg_id, local_path=ref or "")
        for leftover in self.profile.media_dir.glob("*"):  # clear files no message points to
            if leftover.is_file() and not leftover.name.endswith(".sealed"):
                leftover.unlink()
        self.store.settings.set("media_sealed", True)

    async def deliver_image(self, peer: str, encrypted: EncryptedAttachment, blob_id: str, *, data: bytes,
                            name: str, scan: ScanOutcome) -> MessageView:
        now = self.clock()
        msg_id = _new_id()
        pointer = replace(encrypted.pointer, blob_id=blob_id)
        local = self._save_media(data)
        verdict = {"outcome": scan.outcome, "votes": scan.votes, "snapshot": scan.snapshot_fingerprint,
                   "version": scan.snapshot_version, "name": name}
        message = MessageRecord(msg_id, peer, "out", "image", now, "sending", attachment=pointer,
                                local_path=local, verdict=verdict)
        async with self.lock:
            content = Content("image", msg_id, now, attachment=pointer)
            await self._enqueue(peer, content, message, kind="image")
        return self._view(message)

    async def send_report(self, peer: str, data: bytes, scan: ScanOutcome, hashed: HashResult | None) -> None:
        """Seal a report to the authority and queue it to the authority's mailbox (relay cannot read it)."""
        key = bytes.fromhex(self.settings.authority_pubkey)
        report = Report(reporter=self.account_id, recipient=peer, created_at=self.clock(),
                        snapshot_fingerprint=scan.snapshot_fingerprint,
                        snapshot_version=scan.snapshot_version,
                        votes=scan.votes, quality=scan.quality, pdq_hash=hashed.hex if hashed else None,
                        image_sha256=hashlib.sha256(data).hexdigest())
        threshold = self.settings.report_threshold
        if threshold <= 1:
            self._queue_to_authority(key, lambda: seal_report(report, key), "report")
        else:  # threshold reporting: a voucher the authority can open only with t of them (client.vouchers)
            self._queue_to_authority(key, lambda: self.vouchers.seal(report, threshold=threshold,
                                                                     now=self.clock(), authority_key=key),
                                     "voucher")
        self._trace("net.send_report")
        self.net.kick()

    def _queue_to_authority(self, key: bytes, envelope: Callable[[], bytes], kind: str) -> None:
        meta: dict[str, Any] = {"kind": kind}
        if kind == "voucher" and self.settings.voucher_delay > 0:  # timing must not tie it to this send
            meta["not_before"] = self.clock() + voucher_delay(self.settings.voucher_delay)
        with self.store.transaction():  # a voucher's counter step and its outbox entry commit together
            self.store.outbox.put(OutboxItem(os.urandom(16).hex(), authority_mailbox(key), envelope(),
                                             self.clock(), 0, meta))

    def outbox_due(self) -> list[OutboxItem]:
        """Envelopes due now: a delayed voucher waits in the outbox until its time (a timer kicks the net)."""
        now = self.clock()
        due = []
        for item in self.store.outbox.pending():
            when = float(item.meta.get("not_before") or 0.0)
            if when <= now:
                due.append(item)
            elif item.envelope_id not in self._timers:
                with contextlib.suppress(RuntimeError):  # no event loop: the next connection sends it
                    asyncio.get_running_loop().call_later(when - now, self._wake, item.envelope_id)
                    self._timers.add(item.envelope_id)
        return due

    def _wake(self, envelope_id: str) -> None:
        self._timers.discard(envelope_id)
        self.net.kick()

    async def _maybe_synthetic_voucher(self, scan: ScanOutcome) -> None:
        """Under threshold reporting, a fraction of non-matching images send a synthetic voucher."""
        s = self.settings
        if s.authority_pubkey and wants_synthetic(s.policy, s.report_threshold, s.synthetic_vouchers):
            key = bytes.fromhex(s.authority_pubkey)
            self._queue_to_authority(key, lambda: self.vouchers.seal(None, threshold=s.report_threshold,
                                                                     now=self.clock(), authority_key=key),
                                     "voucher")
            self._trace("net.send_voucher")
            self.net.kick()

    # ----- inbound -----------------------------------------------------------------------------
    async def _on_inbound(self, env: Inbound) -> None:
        """Handle one pushed envelope; whatever fails costs this envelope only (recorded, then acked)."""
        async with self.lock:
            tries = self._inbound_tries.get(env.mid, 0) + 1
            self._inbound_tries[env.mid] = tries
            while len(self._inbound_tries) > 1024:
                self._inbound_tries.pop(next(iter(self._inbound_tries)))
            if tries > MAX_INBOUND_ATTEMPTS:
                self._record_failure(env, f"its processing was interrupted {MAX_INBOUND_ATTEMPTS} times")
            else:
                try:
                    await self._process(env)
                except Exception as exc:
                    with contextlib.suppress(Exception):  # a one-time prekey may be spent in memory only
                        self.prekeys = self.store.keys.load_prekeys() or self.prekeys
                    self._record_failure(env, _failure_reason(exc))
            self._inbound_tries.pop(env.mid, None)
        self._inbound_count += 1

    def _sender_label(self, sender: str) -> str:
        contact = self.store.contacts.get(sender) if _ACCOUNT_ID.fullmatch(sender) else None
        return contact.label if contact is not None else (sender if _ACCOUNT_ID.fullmatch(sender) else "?")

    def _failure_record(self, sender: str, reason: str) -> MessageRecord:
        """A local record standing for a message that could not be shown (a local random id)."""
        text = f"a message from {self._sender_label(sender)} could not be shown: {reason}"
        return MessageRecord(_new_id(), sender, "in", "text", self.clock(), "failed", body=text)

    def _record_failure(self, env: Inbound, reason: str) -> None:
        """Record an envelope that could not be handled, mark it seen; never raises (it is acked next)."""
        self.last_error = f"a message from {env.sender[:32]} could not be shown: {reason}"
        self._trace("core.inbound_failed")
        try:
            if not _ACCOUNT_ID.fullmatch(env.sender):  # a relay that names no account: nothing to show
                self.store.dedupe.mark_seen(env.mid)
                return
            record = self._failure_record(env.sender, reason)
            with self.store.transaction():
                if self.store.contacts.get(env.sender) is None:
                    self.store.contacts.add(env.sender, now=self.clock())
                self.store.messages.add(record)
                queue = list(self.store.settings.get(CLI_INBOX, []))[-9_999:]
                self.store.settings.set(CLI_INBOX, [*queue, record.msg_id])
                self.store.dedupe.mark_seen(env.mid)
        except Exception as exc:  # e.g. the disk is full: the envelope is still acknowledged
            self.last_error = f"{self.last_error} (and it could not be recorded: {type(exc).__name__})"
            return
        self.hub.emit(MessageReceived(self._view(record)))

    async def _process(self, env: Inbound) -> None:
        if receive_notice(self, env):  # the authority's sealed decision on our submission or appeal
            return
        store = self.store
        sender = env.sender
        if not _ACCOUNT_ID.fullmatch(sender):
            raise ClientError("the relay named no valid sender")
        contact = store.contacts.get(sender)
        prekeys = self.prekeys  # kept equal to the stored prekeys (reloaded if a transaction fails)
        try:
            dec = decrypt_message(self.identity, prekeys, store.sessions.load(sender), env.env,
                                  sender_account_id=sender,
                                  known_identity_key=contact.identity_key if contact else None)
        except DuplicateMessage:
            store.dedupe.mark_seen(env.mid)
            return
        except IdentityKeyChanged as exc:
            self._flag_key_change(sender, exc.old_key, exc.new_key)
            store.dedupe.mark_seen(env.mid)
            return
        self._trace("session.decrypt")
        message: MessageRecord | None = None
        receipts: list[str] = []
        shown = True
        content: Content | None
        try:
            content = Content.from_bytes(dec.plaintext)
        except DecryptionFailed as exc:  # authentic but malformed: the session advanced, keep it
            content = None
            message, shown = self._failure_record(sender, _failure_reason(exc)), False
            self._trace("core.inbound_failed")
        if content is None:
            pass
        elif content.kind == "text":
            message = MessageRecord(content.msg_id, sender, "in", "text", content.sent_at, "received",
                                    body=content.text or "")
        elif content.kind == "image" and content.attachment is not None:
            try:
                message = await self._receive_image(sender, content.msg_id, content.sent_at,
                                                    content.attachment)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the session advanced: keep it, show the failure instead
                message, shown = self._failure_record(sender, _failure_reason(exc)), False
                self.last_error = message.body or ""
                self._trace("core.inbound_failed")
        elif content.kind == "receipt":
            receipts = list(content.receipts)
        existing = store.messages.get(message.msg_id) if message is not None else None
        if existing is not None and existing.peer != sender:  # another peer's (or our own) message id
            message, shown = self._failure_record(sender, "it reused the id of another message"), False
        with store.transaction():
            store.sessions.save(dec.record)
            if dec.new_session:
                store.keys.save_prekeys(prekeys)
            if contact is None:
                store.contacts.add(sender, identity_key=dec.record.peer_identity, now=self.clock())
            elif contact.identity_key is None:
                store.contacts.set_identity_key(sender, dec.record.peer_identity)
            fresh = message is not None and store.messages.add(message)
            if fresh and message is not None:
                queue = list(store.settings.get(CLI_INBOX, []))[-9_999:]
                store.settings.set(CLI_INBOX, [*queue, message.msg_id])
            delivered = []
            for rid in receipts:
                old = store.messages.get(rid)
                mine = old is not None and old.direction == "out" and old.peer == sender
                if mine and old is not None and old.state != "delivered":
                    store.messages.update(rid, state="delivered")
                    delivered.append(rid)
            store.dedupe.mark_seen(env.mid)
        if dec.new_session:
            self.prekeys = prekeys
        for rid in delivered:
            self.hub.emit(DeliveryChanged(rid, sender, "delivered"))
        if message is not None:
            if fresh:
                self.hub.emit(MessageReceived(self._view(message)))
            if not shown:
                return
            receipt = Content("receipt", _new_id(), self.clock(), receipts=(message.msg_id,))
            try:
                await self._enqueue(sender, receipt, None, kind="receipt")
            except (ClientError, NetError) as exc:
                self.last_error = f"could not send a delivery receipt: {exc}"

    async def _receive_image(self, sender: str, msg_id: str, sent_at: float,
                             pointer: AttachmentPointer) -> MessageRecord:
        """Download (streamed, capped at the size the pointer implies), verify, decrypt and seal an image.

        Raises on any failure (missing, oversized, size mismatch, corrupt, disk full): the caller
        records the message as one that could not be shown.
        """
        if pointer.size > MAX_IMAGE_SIZE:
            raise AttachmentCorrupt(f"the image is over the {MAX_IMAGE_SIZE // 2**20} MiB limit")
        blob = await self.net.download_blob(pointer.blob_id, size=expected_blob_size(pointer.size),
                                            timeout=DOWNLOAD_TIMEOUT)
        data = decrypt_attachment(blob, pointer)
        del blob
        local = self._save_media(data)
        verdict: dict[str, Any] | None = None
        if self.settings.scan_received:
            verdict = await self._scan_received(data)
        if blurs_received(self.settings.sensitive_content):  # rated on the device, never reported
            rating = await asyncio.to_thread(self.classifier.classify, data, name="received image")
            verdict = {**(verdict or {}), "sensitive": rating.as_dict()}
        return MessageRecord(msg_id, sender, "in", "image", sent_at, "received",
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
        ids = list(self.store.settings.get(CLI_INBOX, []))
        out = [v for v in (self.message(i) for i in ids) if v is not None]
        self.store.settings.set(CLI_INBOX, [])
        return out

    # ----- scanner and snapshots ---------------------------------------------------------------
    def _authority_key(self) -> bytes:
        return bytes.fromhex(self.settings.authority_pubkey) if self.settings.authority_pubkey else b""

    def _wants_snapshot(self, version: int) -> bool:
        current = self.slot.current
        return current is None or version > current.version

    def _snapshot_floor(self) -> tuple[int, str | None]:
        """The persisted floor: the newest accepted version and its fingerprint (no same-version swap)."""
        floor = self.store.settings.get("snapshot_floor")
        if (isinstance(floor, list) and len(floor) == 2 and isinstance(floor[0], int)
                and isinstance(floor[1], str)):
            return floor[0], floor[1]
        return int(self.store.settings.get("snapshot_version", 0)), None

    def install_snapshot(self, data: bytes) -> None:
        """Verify ``data`` against the pinned authority key and swap it in (raises if refused)."""
        key = self._authority_key()
        if not key:
            raise ClientError("no authority key configured: cannot verify snapshots")
        version, fingerprint = self._snapshot_floor()
        view = load_snapshot_view(data, key, now=self.clock(), min_version=version,
                                  min_fingerprint=fingerprint, oprf=self._oprf())
        current = self.slot.current
        if (current is not None and current.version == view.version
                and current.fingerprint != view.fingerprint):
            raise SnapshotInvalid(f"snapshot version {view.version} reused with different content: refused")
        tmp = self.profile.snapshot_file.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, self.profile.snapshot_file)
        if self.slot.swap(view):
            with self.store.transaction():
                self.store.settings.set("snapshot_version", view.version)
                self.store.settings.set("snapshot_floor", [view.version, view.fingerprint])
            self._trace("scanner.snapshot_installed")
            self.hub.emit(SnapshotChanged(self.scanner_status()))

    def _load_saved_snapshot(self) -> None:
        path = self.profile.snapshot_file
        key = self._authority_key()
        if not path.exists() or not key:
            return
        version, fingerprint = self._snapshot_floor()
        with contextlib.suppress(Exception):  # a damaged or swapped file is refetched from the relay
            view = load_snapshot_view(path.read_bytes(), key, now=self.clock(), min_version=version,
                                      min_fingerprint=fingerprint, oprf=self._oprf())
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
        key = self.store.derived_key(SETTINGS_MAC)
        stored = load_settings(self.profile.settings_file, env=False, key=key)
        save_settings(self.profile.settings_file, replace(stored, policy=policy), key=key)
        self.hub.emit(SnapshotChanged(self.scanner_status()))

    # ----- the authority loop (client.protect) -------------------------------------------------
    async def protect_image(self, path: Path, *, hashes: Any = None) -> Any:
        """Hash ``path`` here (unless ``hashes`` are given) and queue a sealed protection request."""
        from client.protect import image_hashes, submit_protection

        data = await asyncio.to_thread(Path(path).read_bytes)
        if hashes is None:
            hashes = await asyncio.to_thread(image_hashes, data, name=Path(path).name)
        async with self.lock:
            return submit_protection(self, data, name=Path(path).name, hashes=hashes)

    async def appeal_image(self, path: Path, *, reason: str, attach_image: bool = False) -> Any:
        """Queue a sealed appeal against the block of ``path`` (the image only with ``attach_image``)."""
        from client.protect import submit_appeal

        data = await asyncio.to_thread(Path(path).read_bytes)
        return await submit_appeal(self, data, name=Path(path).name, reason=reason, attach_image=attach_image)

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
            "contacts": len(self.store.contacts.all()),
            "outbox_pending": len(self.store.outbox.pending()),
            "profile": str(self.profile.root),
            "report_threshold": self.settings.report_threshold,
            "synthetic_vouchers": self.settings.synthetic_vouchers,
            "voucher_delay": self.settings.voucher_delay,
        }


__all__ += ["UnknownContact"]
