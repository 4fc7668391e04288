"""Sender: outgoing texts, images and forwards, and the image pipeline's courier.

Texts are not scanned: :meth:`Sender.send_text` encrypts and queues them (or, offline to a peer
without a session, stores them until the next connection). Images and forwards go through the
scan-before-encrypt pipeline (``client.image_pipeline.send_image``); once the policy lets an image
leave, the pipeline calls this object back as its :class:`~client.interfaces.Courier`: upload the
opaque blob, then store the message and queue its encrypted pointer (:meth:`deliver_image`), or
hand a report to :class:`~client.core.reports.Reports`.

Collaborators: the encrypted store, the sessions, the messages (views, stored images), the sealed
media store, the reports, a :class:`BlobLink` (uploads; ``client.net.Net`` in the core), the
pipeline (wired by the core: it needs this object as its courier), a clock, a trace callback and
the core's lock.
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from client.core.messages import Messages
from client.core.reports import Reports
from client.core.sessions import Sessions
from client.core.shared import Shared
from client.crypto.attachments import EncryptedAttachment, encrypt_image
from client.errors import ClientError
from client.image_pipeline import ImagePipeline, send_image
from client.interfaces import MessageView, SendOutcome
from client.media_store import MediaStore
from client.net import NetError
from client.policy import ScanOutcome
from client.session import Content
from client.store import MessageRecord, Store
from scanner.hashers.base import HashResult

__all__ = ["MAX_TEXT_BYTES", "BlobLink", "Sender", "new_message_id"]

MAX_TEXT_BYTES = 64 * 1024
"""Longest text message (UTF-8 bytes)."""


def new_message_id() -> str:
    """A fresh random message id (24 hex digits)."""
    return os.urandom(12).hex()


class BlobLink(Protocol):
    """What sending needs from the network link (``client.net.Net``)."""

    @property
    def connected(self) -> bool: ...

    async def upload_blob(self, blob: bytes) -> str: ...


@dataclass(eq=False, repr=False)
class Sender:
    """Send texts and images; the courier the image pipeline hands cleared images to."""

    store: Store
    shared: Shared
    _: KW_ONLY
    sessions: Sessions
    messages: Messages
    media: MediaStore
    reports: Reports
    link: BlobLink
    pipeline: ImagePipeline = field(init=False)
    """The scan-before-encrypt pipeline (wired by the core with this object as its courier)."""

    async def send_text(self, peer: str, text: str) -> SendOutcome:
        """Send a text message (text is not scanned)."""
        if not text:
            return SendOutcome("error", error="empty message")
        if len(text.encode()) > MAX_TEXT_BYTES:
            return SendOutcome("error", error="message too long (64 KiB at most)")
        now = self.shared.clock()
        msg_id = new_message_id()
        message = MessageRecord(msg_id, peer, "out", "text", now, "sending", body=text)
        try:
            async with self.shared.lock():
                if not self.link.connected and not self.sessions.has_session(peer):
                    self.sessions.queue_for_session(message)
                    return SendOutcome("queued", self.messages.view(message))
                await self.sessions.enqueue(peer, Content("text", msg_id, now, text=text), message,
                                            kind="text")
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))
        return SendOutcome("sent", self.messages.view(message))

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome:
        """Send an image through the scan-before-encrypt pipeline (``client.image_pipeline``)."""
        try:
            self.store.contacts.require(peer)
            return await send_image(self.pipeline, peer, Path(path), confirmed=confirmed)
        except (ClientError, NetError) as exc:
            return SendOutcome("error", error=str(exc))

    async def forward_image(self, msg_id: str, peer: str, *, confirmed: bool = False) -> SendOutcome:
        """Forward a stored image: its bytes go through the same pipeline (scanned again, for this send)."""
        data = self.messages.image_bytes(msg_id)
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

    # ----- the pipeline's courier (interfaces.Courier) and crypto seam ---------------------------
    def seal_image(self, data: bytes, verdict: Any, *, content_type: str, width: int | None,
                   height: int | None) -> EncryptedAttachment:
        """The pipeline's :class:`~client.interfaces.ImageSealer`: encrypt with the sealed verdict."""
        self.shared.trace("session.encrypt_image")
        return encrypt_image(data, verdict, content_type=content_type, width=width, height=height)

    async def upload_blob(self, blob: bytes) -> str:
        self.shared.trace("net.upload_blob")
        return await self.link.upload_blob(blob)

    async def deliver_image(self, peer: str, encrypted: EncryptedAttachment, blob_id: str, *, data: bytes,
                            name: str, scan: ScanOutcome) -> MessageView:
        """Seal the image locally, then store the message and queue its encrypted pointer."""
        now = self.shared.clock()
        msg_id = new_message_id()
        pointer = replace(encrypted.pointer, blob_id=blob_id)
        local = self.media.put(data)
        verdict = {"outcome": scan.outcome, "votes": scan.votes, "snapshot": scan.snapshot_fingerprint,
                   "version": scan.snapshot_version, "name": name}
        message = MessageRecord(msg_id, peer, "out", "image", now, "sending", attachment=pointer,
                                local_path=local, verdict=verdict)
        async with self.shared.lock():
            content = Content("image", msg_id, now, attachment=pointer)
            await self.sessions.enqueue(peer, content, message, kind="image")
        return self.messages.view(message)

    async def send_report(self, peer: str, data: bytes, scan: ScanOutcome, hashed: HashResult | None) -> None:
        """Queue a sealed report (or threshold voucher) to the authority instead of sending the image."""
        self.reports.send_report(peer, data, scan, hashed)
