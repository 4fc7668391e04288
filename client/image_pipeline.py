"""The outgoing-image pipeline: read, hash, match, policy, sealed verdict, encrypt, upload, send.

:func:`send_image` is the one place an outgoing image goes through, from the TUI, the CLI and
forwards alike. Nothing leaves the device unless the policy says so, and the image is encrypted
only with the scanner's sealed verdict for its exact bytes (the crypto seam refuses anything
else). Retries never come back here: they resend the already-encrypted envelope from the
persisted outbox (``client.net``), so an image is encrypted once, after its scan.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from client.errors import ClientError
from client.interfaces import Courier, ImageScanner, ImageSealer, SendOutcome
from client.policy import Decision, PolicyName, ScanOutcome, decide
from client.sensitive import ImageClassifierPort, SensitiveResult, warns_before_sending
from scanner.errors import ScannerError
from scanner.hashers.base import HashResult
from scanner.verdict import with_classification

__all__ = [
    "MAX_IMAGE_BYTES",
    "Courier",
    "ImagePipeline",
    "ImageScanner",
    "ImageSealer",
    "SendError",
    "image_info",
    "read_image_file",
    "send_image",
]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Largest image file sent (the padded, encrypted blob must fit the relay's 25 MiB limit)."""


class SendError(ClientError):
    """The message or image could not be sent (the reason is in the message; nothing was lost)."""


@dataclass
class ImagePipeline:
    """The parts the pipeline runs through, wired by ``client.core``."""

    scanner: ImageScanner
    seal: ImageSealer
    courier: Courier
    policy: Callable[[], PolicyName]
    dihedral: Callable[[], bool]
    decide: Callable[[ScanOutcome, PolicyName], Decision] = decide
    trace: Callable[[str], None] | None = None
    classifier: ImageClassifierPort | None = None
    """The on-device sensitive-content classifier (``client.sensitive``); None: never classify."""
    sensitive_content: Callable[[], str] = lambda: "off"
    """The ``sensitive-content`` setting (off, warn, blur, both), read at each send."""
    on_clean_send: Callable[[ScanOutcome], Awaitable[None]] | None = None
    """Called when a scanned image is about to be sent (synthetic vouchers under threshold reporting)."""

    def _t(self, step: str) -> None:
        if self.trace is not None:
            self.trace(step)


def read_image_file(path: Path) -> bytes:
    """Read an image file, bounded; raise :class:`SendError` with a readable reason."""
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            limit = MAX_IMAGE_BYTES // 2**20
            raise SendError(f"{path.name} is {size / 2**20:.1f} MiB; the limit is {limit} MiB")
        if size == 0:
            raise SendError(f"{path.name} is empty")
        with path.open("rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise SendError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise SendError(f"{path} is a folder, not an image") from None
    except PermissionError:
        raise SendError(f"cannot read {path}: permission denied") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise SendError(f"{path.name} grew past the {MAX_IMAGE_BYTES // 2**20} MiB limit while reading")
    return data


def image_info(data: bytes) -> tuple[str, int | None, int | None]:
    """Content type and dimensions from the header only (no pixel decode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = (img.format or "").lower()
            if img.format == "MPO":  # the multi-picture JPEG phones write: a JPEG to every reader
                return "image/jpeg", img.width, img.height
            return (Image.MIME.get(img.format or "", f"image/{fmt}" if fmt else "application/octet-stream"),
                    img.width, img.height)
    except (UnidentifiedImageError, OSError, ValueError):
        return "application/octet-stream", None, None


async def send_image(pipe: ImagePipeline, peer: str, path: Path | None = None, *, data: bytes | None = None,
                     name: str | None = None, confirmed: bool = False) -> SendOutcome:
    """Send one image to ``peer`` under the current policy (``path``, or ``data`` for forwards).

    Returns a :class:`SendOutcome`: ``sent``, ``blocked``, ``reported`` or ``confirm`` (policy
    ``warn`` and not yet ``confirmed``). Raises :class:`SendError` if the file cannot be read.
    """
    # 1. read the exact bytes that would leave the device
    if data is None:
        if path is None:
            raise SendError("nothing to send: give a path or the image bytes")
        pipe._t("read")
        data = read_image_file(path)
    name = name or (path.name if path is not None else "image")
    policy = pipe.policy()

    # 2-3. hash (in a thread: CPU-bound) and match against the current snapshot, unless policy is off
    hashed: HashResult | None = None
    if policy == "off":
        scan = ScanOutcome("skipped", reason="policy off: images are not scanned")
    else:
        pipe._t("hash")
        try:
            hashed = await asyncio.to_thread(pipe.scanner.hash, data, name=name, dihedral=pipe.dihedral())
        except ScannerError as exc:
            scan = pipe.scanner.error(exc)
        else:
            pipe._t("match")
            # OPRF-keyed snapshots make a network round trip here: keep it off the event loop.
            scan = await asyncio.to_thread(pipe.scanner.match, hashed)

    # 4. the policy decides; the scanner seals its verdict for exactly these bytes
    pipe._t("policy")
    decision = pipe.decide(scan, policy)
    verdict = pipe.scanner.verdict(data, scan)

    # 5. stop here unless the image may leave
    if decision.action == "block":
        return SendOutcome("blocked", None, scan, decision)
    if decision.action == "report":
        pipe._t("report")
        await pipe.courier.send_report(peer, data, scan, hashed)
        return SendOutcome("reported", None, scan, decision)

    # 5b. sensitive-content warning (its own setting: never blocks, never reports): rate the same bytes
    # and bind the rating into the sealed verdict
    sensitive: SensitiveResult | None = None
    if pipe.classifier is not None and warns_before_sending(pipe.sensitive_content()):
        pipe._t("classify")
        sensitive = await asyncio.to_thread(pipe.classifier.classify, data, name=name)
        if sensitive.label is not None:
            verdict = with_classification(verdict, data, label=sensitive.label, score=sensitive.score or 0.0,
                                          model=sensitive.model or "")
        if sensitive.flagged:
            decision = _ask_about_sensitive(decision, sensitive)
    if decision.action == "confirm":
        if not confirmed:
            return SendOutcome("confirm", None, scan, decision, sensitive=sensitive)
        decision = replace(decision, explanation=decision.explanation.replace(
            "send anyway?", "sent after the sender confirmed"))

    if pipe.on_clean_send is not None and scan.outcome == "no_match":
        await pipe.on_clean_send(scan)

    # 6. encrypt behind the seam, upload the opaque blob, send the pointer in an E2E message
    pipe._t("encrypt")
    content_type, width, height = image_info(data)
    encrypted = pipe.seal(data, verdict, content_type=content_type, width=width, height=height)
    pipe._t("upload")
    blob_id = await pipe.courier.upload_blob(encrypted.blob)
    pipe._t("send")
    message = await pipe.courier.deliver_image(peer, encrypted, blob_id, data=data, name=name, scan=scan)
    return SendOutcome("sent", message, scan, decision, sensitive=sensitive)


def _ask_about_sensitive(decision: Decision, sensitive: SensitiveResult) -> Decision:
    """Turn ``send`` into ``confirm`` (or add to a hash ``confirm``) with the classifier's reason."""
    head = decision.explanation.rsplit("; ", 1)[0]
    return replace(decision, action="confirm", explanation=f"{head}; {sensitive.describe()}; send anyway?")
