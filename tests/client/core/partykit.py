"""Helpers for testing each ``client.core`` component alone: a real SQLite store, recorders, no sockets.

``Party`` is one account (identity, prekeys, store) with every component wired the way
``client.core.facade.Core`` wires them, except that the network link is a :class:`LinkRecorder`
(magic-wormhole's Dummy: it appends each call to ``events``) and ``kick`` is recorded too. Two
parties exchange real ratchet envelopes in memory: ``bob.link.bundles`` serves alice's bundle.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cbor2

from client.config import Settings
from client.core.contacts import Contacts
from client.core.inbound import InboundProcessor
from client.core.messages import Messages
from client.core.outbox import Outbox
from client.core.reports import Reports
from client.core.sender import Sender
from client.core.sessions import Sessions
from client.core.shared import Shared
from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.interfaces import CoreEvent, EventHub
from client.media_store import MediaStore
from client.sensitive import LocalClassifier
from client.store import Store
from client.vouchers.issuer import VoucherIssuer
from tests.client.recorder import Recorder


class LinkRecorder:
    """The network link's request side, recorded: bundles come from ``bundles``, blobs stay in memory."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.connected = True
        self.bundles: dict[str, bytes] = {}
        """account id -> CBOR prekey bundle the fake relay hands out."""
        self.blobs: dict[str, bytes] = {}
        self.prekeys_left = 100
        self.published: list[tuple[int, bool]] = []
        """(number of one-time prekeys, replace) per publish."""

    async def fetch_bundle(self, account: str) -> tuple[bytes, bytes | None]:
        self.events.append("link.fetch_bundle")
        return self.bundles[account], None

    async def publish_prekeys(self, bundle: bytes | None, one_time: list[bytes], *, replace: bool) -> int:
        self.events.append("link.publish_prekeys")
        self.published.append((len(one_time), replace))
        return len(one_time)

    async def count_prekeys(self) -> int:
        self.events.append("link.count_prekeys")
        return self.prekeys_left

    def kick(self) -> None:
        self.events.append("link.kick")

    async def upload_blob(self, blob: bytes) -> str:
        self.events.append("link.upload_blob")
        blob_id = f"blob{len(self.blobs)}"
        self.blobs[blob_id] = blob
        return blob_id

    async def download_blob(self, blob_id: str, *, size: int | None = None, timeout: float = 120) -> bytes:
        self.events.append("link.download_blob")
        return self.blobs[blob_id]


class Party:
    """One account's components over a real store, with a recorded link, hub and trace."""

    def __init__(self, root: Path, name: str, *, settings: Settings | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.events: list[str] = []
        self.emitted: list[CoreEvent] = []
        self.errors: list[str] = []
        self.now = time.time()
        self.settings = settings or Settings(relay="ws://127.0.0.1:9", policy="block", name=name)
        self.identity = IdentityKeyPair.generate()
        self.store = Store.create(root / "store.sqlite", passphrase=None)
        self.store.keys.save_identity(self.identity)
        self.prekeys = PreKeyState.create(self.identity, time.time())
        self.store.keys.save_prekeys(self.prekeys)
        self.hub = EventHub()
        self.hub.subscribe(self.emitted.append)
        self.link = LinkRecorder(self.events)
        self.media = MediaStore(root / "media", self.store.derived_key("media"))
        self._lock = asyncio.Lock()
        self.shared = Shared(self.hub, clock=self.clock, settings=lambda: self.settings, lock=self.lock,
                             trace=self.events.append, note_error=self.errors.append)
        self.contacts = Contacts(self.store, self.shared, self.identity)
        self.messages = Messages(self.store, self.shared, self.media)
        self.outbox = Outbox(self.store, self.shared, self.link.kick)
        self.sessions = Sessions(self.store, self.shared, self.identity, self.prekeys, contacts=self.contacts,
                                 outbox=self.outbox, link=self.link)
        vouchers = VoucherIssuer(self.store.settings, self.identity.account_id)
        self.reports = Reports(self.store, self.shared, vouchers, self.link.kick)
        self.sender = Sender(self.store, self.shared, sessions=self.sessions, messages=self.messages,
                             media=self.media, reports=self.reports, link=self.link)
        self.scanner = Recorder()
        self.inbound = InboundProcessor(
            self.store, self.shared, self.identity, sessions=self.sessions, contacts=self.contacts,
            messages=self.messages, media=self.media, link=self.link, scanner=self.scanner,
            classifier=LocalClassifier(lambda: self.settings.sensitive_model))

    @property
    def account_id(self) -> str:
        return self.identity.account_id

    def clock(self) -> float:
        return self.now

    def lock(self) -> asyncio.Lock:
        return self._lock

    def bundle(self) -> bytes:
        """This party's prekey bundle as the relay would hand it out (CBOR)."""
        return bytes(cbor2.dumps(self.prekeys.bundle(self.identity.public).to_dict()))

    def close(self) -> None:
        self.store.close()
