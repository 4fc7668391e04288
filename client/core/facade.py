"""The Boss: builds the client's components, wires them together and keeps the profile's lifecycle.

:class:`Core` is a thin façade, as magic-wormhole's ``_boss.py`` is: it opens or creates the
profile (lock file, encrypted store, authenticated settings), builds each component with its
collaborators and wires the network link's callbacks to them. The work lives in the components,
each a plain object with one job, exposed as attributes:

============  ==============================================  ===========================
attribute     job                                             module
============  ==============================================  ===========================
contacts      address book, pinned keys, safety numbers       ``client.core.contacts``
messages      conversation views, stored images, CLI inbox    ``client.core.messages``
sessions      prekeys, sessions, encrypt-then-queue           ``client.core.sessions``
sender        texts, images, forwards; the pipeline courier   ``client.core.sender``
reports       sealed reports and vouchers to the authority    ``client.core.reports``
inbound       one pushed envelope -> stored message           ``client.core.inbound``
snapshot      the verified snapshot slot and scanner status   ``client.core.snapshot``
outbox        persisted envelopes as the link sees them       ``client.core.outbox``
media         sealed images at rest                           ``client.media_store``
net           the network link (the only socket owner)        ``client.net``
============  ==============================================  ===========================

Front ends (``client.tui``, ``client.cli.messaging``, the demo bot) hold a :class:`Core` and call
its components from asyncio; hashing runs in a thread. Every step is persisted in the encrypted
store (``client.store``) before anything is sent.

``trace``: an optional callback told ``"machine.step"`` for each step (pipeline, net, store), as
magic-wormhole's ``set_trace`` does; tests use it to assert the order of operations.
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import nacl.signing

from client.config import Settings, load_settings, save_settings
from client.core.contacts import Contacts, format_invite
from client.core.inbound import InboundProcessor
from client.core.messages import Messages
from client.core.outbox import Outbox
from client.core.reports import Reports
from client.core.sender import Sender
from client.core.sessions import Sessions
from client.core.shared import Shared
from client.core.snapshot import SnapshotService
from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.errors import ClientError, StoreError
from client.image_pipeline import ImagePipeline
from client.interfaces import ConnectionChanged, CoreEvent, EventHub, SnapshotChanged
from client.locations import Profile
from client.media_store import MediaStore
from client.net import Net
from client.policy import PolicyName, decide
from client.protect import receive_notice
from client.scanning import LocalScanner
from client.sensitive import LocalClassifier
from client.store import Store
from client.vouchers.issuer import VoucherIssuer

__all__ = ["SETTINGS_MAC", "Core", "ProfileInUse", "lock_profile", "open_settings"]

SETTINGS_MAC = "settings-mac"
"""Store flag (and key purpose): this profile's settings.json carries a MAC under the store's key."""


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


def lock_profile(profile: Profile) -> IO[str]:
    """Take the profile's lock file (raises :class:`ProfileInUse`); held open while the core lives."""
    profile.ensure()
    fh = open(profile.lock_file, "a")  # noqa: SIM115 - held open for the core's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ProfileInUse(f"the profile {profile.root} is open in another pocketscan process") from None
    return fh


class Core:
    """One unlocked profile: identity, store, components and relay link (:meth:`create` / :meth:`open`)."""

    contacts: Contacts
    messages: Messages
    sessions: Sessions
    sender: Sender
    reports: Reports
    inbound: InboundProcessor
    snapshot: SnapshotService
    outbox: Outbox
    media: MediaStore
    net: Net

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
        self.clock = clock
        self.trace = trace
        self.hub = EventHub()
        self.last_error = ""
        """The latest problem a front end may show (a dropped envelope, an unsent receipt, ...)."""
        self._lock_file = lock
        self._lock: asyncio.Lock | None = None
        self._started = False
        self._build(store, identity, prekeys)

    def _build(self, store: Store, identity: IdentityKeyPair, prekeys: PreKeyState) -> None:
        """Build every component with its collaborators, then wire the network link to them."""
        # read at each call: a test (or a setting change) may replace the core's clock or settings
        shared = Shared(self.hub, clock=lambda: self.clock(), settings=lambda: self.settings,
                        lock=lambda: self.lock, trace=self._trace, note_error=self._note_error)
        kick = lambda: self.net.kick()  # noqa: E731 - the link is built last: it calls the components
        self.media = MediaStore(self.profile.media_dir, store.derived_key("media"))
        self.snapshot = SnapshotService(store, shared, self.profile.snapshot_file, signing_seed=identity.seed)
        self.scanner = LocalScanner(self.snapshot.slot, clock=shared.clock)
        self.classifier = LocalClassifier(lambda: self.settings.sensitive_model)
        self.contacts = Contacts(store, shared, identity)
        self.messages = Messages(store, shared, self.media)
        self.outbox = Outbox(store, shared, kick)
        self.net = Net(
            self.settings.relay, nacl.signing.SigningKey(identity.seed), self.outbox,
            on_inbound=lambda env: self.inbound.handle(env), seen=store.dedupe.seen, on_state=self._on_link,
            wants_snapshot=self.snapshot.wants, install_snapshot=self.snapshot.install,
            on_connected=lambda: self.sessions.on_connected(),
            on_prekeys_low=lambda left: self.sessions.on_connected(),
        )
        self.sessions = Sessions(store, shared, identity, prekeys, contacts=self.contacts, outbox=self.outbox,
                                 link=self.net)
        self.vouchers = VoucherIssuer(store.settings, identity.account_id)
        self.reports = Reports(store, shared, self.vouchers, kick)
        self.sender = Sender(store, shared, sessions=self.sessions, messages=self.messages, media=self.media,
                             reports=self.reports, link=self.net)
        self.sender.pipeline = ImagePipeline(
            scanner=self.scanner, seal=self.sender.seal_image, courier=self.sender,
            policy=lambda: self.settings.policy, dihedral=lambda: self.settings.dihedral,
            trace=lambda step: self._trace(f"pipeline.{step}"), classifier=self.classifier,
            sensitive_content=lambda: self.settings.sensitive_content,
            on_clean_send=self.reports.synthetic_voucher,
            decide=lambda scan, policy: decide(scan, policy, report_threshold=self.settings.report_threshold),
        )
        self.inbound = InboundProcessor(
            store, shared, identity, sessions=self.sessions, contacts=self.contacts, messages=self.messages,
            media=self.media, link=self.net, scanner=self.scanner, classifier=self.classifier,
            notices=lambda env: receive_notice(self, env))
        self.snapshot.load_saved()

    # ----- construction ------------------------------------------------------------------------
    @classmethod
    def create(cls, profile: Profile, *, relay: str, authority_pubkey: str, passphrase: str | None,
               name: str = "", policy: PolicyName = "warn", store_cost: tuple[int, int] | None = None,
               trace: Callable[[str], None] | None = None) -> Core:
        """Create a new account in ``profile`` (refuses to overwrite one)."""
        if profile.store_file.exists():
            raise StoreError(f"{profile.root} already holds an account (`pocketscan account show`)")
        settings = Settings(relay=relay, authority_pubkey=authority_pubkey, policy=policy, name=name,
                            passphrase=passphrase is not None).validate()
        lock = lock_profile(profile)
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
        lock = lock_profile(profile)
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
        core.messages.adopt_plaintext_media(profile.media_dir)
        return core

    # ----- lifecycle ---------------------------------------------------------------------------
    @property
    def lock(self) -> asyncio.Lock:
        """Serialises the store's multi-step updates (sends, inbound envelopes, prekey top-ups)."""
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
        self.snapshot.close()
        self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def publish_now(self, timeout: float = 10.0) -> bool:
        """Connect and make sure our prekeys are at the relay (account creation)."""
        await self.start()
        if not await self.wait_connected(timeout):
            return False
        for _ in range(int(timeout * 20)):
            if self.sessions.published():
                return True
            await asyncio.sleep(0.05)
        return False

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        return await self.net.wait_connected(timeout)

    async def wait_idle(self, *, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Wait until the outbox is empty and no envelope arrived for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            before = self.inbound.count
            await asyncio.sleep(quiet)
            if (not self.outbox.due() and not self.sessions.awaiting()
                    and self.inbound.count == before and self.net.connected):
                return True
        return False

    def subscribe(self, listener: Callable[[CoreEvent], None]) -> None:
        self.hub.subscribe(listener)

    def _trace(self, step: str) -> None:
        if self.trace is not None:
            self.trace(step)

    def _note_error(self, text: str) -> None:
        self.last_error = text

    def _on_link(self, connected: bool, detail: str) -> None:
        if not connected:
            self.last_error = detail
        self.hub.emit(ConnectionChanged(connected, detail))

    # ----- identity and settings ---------------------------------------------------------------
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

    async def set_policy(self, policy: PolicyName) -> None:
        """Change the scan policy for this and later runs (the settings file stays authenticated)."""
        self.settings = replace(self.settings, policy=policy).validate()
        key = self.store.derived_key(SETTINGS_MAC)
        stored = load_settings(self.profile.settings_file, env=False, key=key)
        save_settings(self.profile.settings_file, replace(stored, policy=policy), key=key)
        self.hub.emit(SnapshotChanged(self.snapshot.status()))

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
        status = self.snapshot.status()
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
