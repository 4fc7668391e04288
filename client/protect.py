"""The user's side of the authority loop: protect a photo, appeal a block, receive the decision.

* :func:`image_hashes` hashes an image on the device: PDQ (exact, with its eight dihedral variants) and the
  learned hash when the model is installed. Only these hashes leave the device in a submission.
* :func:`submit_protection` and :func:`submit_appeal` seal a signed item to the pinned authority key
  (``client/authority/items.py``) and put it in the persisted outbox to the authority's mailbox, like a
  report: it is delivered even if the relay is down now. An appeal carries the image's hashes, the snapshot
  version that blocks it and the reason; with ``attach_image=True`` (explicit consent) the image is
  encrypted with a fresh key, uploaded as an opaque relay blob, and the key travels inside the sealed appeal.
* :func:`receive_notice` handles a sealed decision notice from the authority's account: it is opened with
  the identity key, checked against the pinned authority key and stored as a message from the authority
  (shown by ``pocketscan inbox`` and the TUI).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nacl.secret
import nacl.utils

from client.authority.items import ItemError, is_notice, new_ref, open_notice, seal_item
from client.errors import ClientError
from client.interfaces import MessageReceived
from client.report import authority_mailbox
from client.store import MessageRecord, OutboxItem

if TYPE_CHECKING:
    from client.core import Core
    from client.net import Inbound

__all__ = ["AUTHORITY_CONTACT_NAME", "ImageHashes", "Submitted", "image_hashes", "receive_notice",
           "submit_appeal", "submit_protection"]

AUTHORITY_CONTACT_NAME = "authority"
REQUESTS_SETTING = "authority_requests"
"""Store setting: the user's own submissions and appeals (client id -> kind, file name, time)."""
MAX_IMAGE = 25 * 1024 * 1024


@dataclass(frozen=True)
class ImageHashes:
    """What leaves the device for one image: hex hashes only."""

    pdq: str
    pdq_dihedral: tuple[str, ...]
    quality: int
    onnx: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pdq": self.pdq, "pdq_dihedral": list(self.pdq_dihedral)}
        if self.onnx is not None:
            out["onnx"] = self.onnx
        return out


@dataclass(frozen=True)
class Submitted:
    """A sealed item queued to the authority."""

    ref: str
    kind: str
    hashes: ImageHashes
    body: dict[str, Any] = field(repr=False)


def image_hashes(data: bytes, *, name: str = "image") -> ImageHashes:
    """Hash an image on the device (raises ``scanner.errors.ImageError`` if it cannot be decoded)."""
    from scanner.hashing import hash_bytes

    pdq = hash_bytes(data, name=name, algo="pdq", mode="exact", dihedral=True)
    learned: str | None = None
    try:
        learned = hash_bytes(data, name=name, algo="onnx").hex
    except (KeyError, ImportError, RuntimeError, OSError):  # the learned hash is optional
        learned = None
    return ImageHashes(pdq.hex, tuple(pdq.dihedral_hex or ()), pdq.quality, learned)


def _authority_key(core: Core) -> bytes:
    if not core.settings.authority_pubkey:
        raise ClientError("no authority key configured (pocketscan config set authority_pubkey HEX)")
    return bytes.fromhex(core.settings.authority_pubkey)


def _queue(core: Core, kind: str, body: dict[str, Any], name: str) -> None:
    key = _authority_key(core)
    envelope = seal_item(kind, body, core.identity, key)
    ref = str(body[f"{kind}_id"])
    with core.store.transaction():
        core.store.outbox.put(OutboxItem(os.urandom(16).hex(), authority_mailbox(key), envelope,
                                         core.clock(), 0, {"kind": kind}))
        requests = dict(core.store.settings.get(REQUESTS_SETTING, {}))
        requests[ref] = {"kind": kind, "name": name[:64], "created_at": core.clock()}
        core.store.settings.set(REQUESTS_SETTING, dict(list(requests.items())[-1000:]))
    core.net.kick()


def submit_protection(core: Core, data: bytes, *, name: str, hashes: ImageHashes | None = None) -> Submitted:
    """Seal a submission of ``data``'s hashes to the authority and queue it (the image stays here)."""
    hashes = hashes or image_hashes(data, name=name)
    ref = new_ref()
    body = {"submission_id": ref, "created_at": core.clock(), "hashes": hashes.to_dict(),
            "quality": hashes.quality}
    _queue(core, "submission", body, name)
    return Submitted(ref, "submission", hashes, body)


async def submit_appeal(core: Core, data: bytes, *, name: str, reason: str = "",
                        attach_image: bool = False) -> Submitted:
    """Seal an appeal against the block of ``data`` and queue it.

    The image is scanned against the current snapshot to name the version that blocks it. With
    ``attach_image`` the image is encrypted to a fresh key and uploaded as a relay blob first.
    """
    if len(data) > MAX_IMAGE:
        raise ClientError(f"the image is larger than {MAX_IMAGE} bytes")
    hashes = image_hashes(data, name=name)
    from scanner.hashing import hash_bytes

    hashed = hash_bytes(data, name=name, algo="pdq", mode="fast", dihedral=core.settings.dihedral)
    scan = core.scanner.match(hashed)
    ref = new_ref()
    body: dict[str, Any] = {
        "appeal_id": ref, "created_at": core.clock(), "hashes": hashes.to_dict(), "reason": reason[:2000],
        "snapshot_version": scan.snapshot_version, "snapshot_fingerprint": scan.snapshot_fingerprint,
        "votes": scan.votes if scan.outcome == "match" else 0, "quality": hashes.quality,
        "blocked": scan.outcome == "match",
    }
    if attach_image:
        key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
        blob = bytes(nacl.secret.SecretBox(key).encrypt(data))
        blob_id = await core.upload_blob(blob)
        body["attachment"] = {"blob": blob_id, "key": key, "sha256": hashlib.sha256(data).hexdigest(),
                              "size": len(data), "content_type": _content_type(data)}
    _queue(core, "appeal", body, name)
    return Submitted(ref, "appeal", hashes, body)


def _content_type(data: bytes) -> str:
    for magic, kind in ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"),
                        (b"RIFF", "image/webp")):
        if data.startswith(magic):
            return kind
    return "application/octet-stream"


def receive_notice(core: Core, env: Inbound) -> bool:
    """Handle ``env`` if it is a decision notice from the pinned authority; True if it was one.

    A notice that does not verify is dropped (and counted as handled, so it is acknowledged once).
    """
    if not is_notice(env.env) or not core.settings.authority_pubkey:
        return False
    key = _authority_key(core)
    store = core.store
    if env.sender != authority_mailbox(key):
        core.last_error = f"dropped a decision notice not sent by the authority (from {env.sender[:8]})"
        store.dedupe.mark_seen(env.mid)
        return True
    try:
        notice = open_notice(env.env, core.identity, key)
    except ItemError as exc:
        core.last_error = f"dropped a decision notice: {exc}"
        store.dedupe.mark_seen(env.mid)
        return True
    request = dict(store.settings.get(REQUESTS_SETTING, {})).get(notice.ref, {})
    text = notice.describe()
    if request.get("name"):
        text = text.replace(f" {notice.ref[:8]} ", f" {notice.ref[:8]} ({request['name']}) ", 1)
    from client.core import CLI_INBOX

    message = MessageRecord(hashlib.sha256(env.mid.encode()).hexdigest()[:24], env.sender, "in", "text",
                            core.clock(), "received", body=text)
    with store.transaction():
        if store.contacts.get(env.sender) is None:
            try:
                store.contacts.add(env.sender, name=AUTHORITY_CONTACT_NAME, now=core.clock())
            except ClientError:  # the name is taken by another contact
                store.contacts.add(env.sender, now=core.clock())
        fresh = store.messages.add(message)
        if fresh:
            queue = list(store.settings.get(CLI_INBOX, []))[-9_999:]
            store.settings.set(CLI_INBOX, [*queue, message.msg_id])
            decisions = dict(store.settings.get("authority_decisions", {}))
            decisions[notice.ref] = notice.to_dict()
            store.settings.set("authority_decisions", dict(list(decisions.items())[-1000:]))
        store.dedupe.mark_seen(env.mid)
    if fresh:
        core.hub.emit(MessageReceived(core._view(message)))
    return True
