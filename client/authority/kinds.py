"""The built-in item kinds: ``report``, ``submission`` and ``appeal`` (validation and what a decision does).

* **report** (``client/report.py``, sealed by the ``report`` policy): the reporter, recipient, time,
  snapshot version and fingerprint, votes, quality, PDQ hash and SHA-256 of the image about to be sent. A
  decision is recorded only (the bank does not change).
* **submission** (``pocketscan protect``): a person's own photo's hashes (PDQ with its eight dihedral
  variants, the learned hash). Accepting it adds them to the bank with provenance (the authority's source
  name, the submission's queue id and client id, the time); the submitter gets a sealed notice.
* **appeal** (``pocketscan appeal``): the hashes of a blocked image, the snapshot version that blocked it, a
  reason and optionally the image itself (encrypted to the authority as a relay blob, only with
  ``--attach-image``). Accepting it removes every bank entry that could have matched the image (see
  :data:`APPEAL_RADIUS`) and records why; the appellant gets a sealed notice.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict
from typing import Any

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret

from client.authority.inbox import BlobFetcher, KindSpec, Prepared, register_envelope, register_kind
from client.authority.items import ItemError, OpenedItem, is_ref
from client.authority.workflow import ApplyContext, ApplyResult
from client.report import ReportError, open_report
from scanner.hashers.spec import PDQ, spec_for

__all__ = ["APPEAL_RADIUS", "MAX_ATTACHMENT", "open_at_rest", "seal_at_rest"]

MAX_ATTACHMENT = 25 * 1024 * 1024
MAX_REASON = 2000
APPEAL_RADIUS = {name: 2 * spec_for(name).match_distance + 1 for name in ("pdq", "onnx")}
"""Hamming radius (2D + 1 for the hash's match distance D: PDQ 31, the learned hash 25) within which an
accepted appeal removes bank entries: a snapshot's LSH match curve keeps a soft edge above D (up to 2D + 1,
``scanner/calibration.py``), so removing only entries within D could leave the image blocked. Unrelated PDQ
hashes lie about 128 bits apart, so the radius removes near-duplicates of the appealed image only."""
_HEX = re.compile(r"^[0-9a-f]+$")
_ATTACH_CONTEXT = b"pocketscan-authority-attachments-v1"


def _hex(value: object, *, bits: int | None = None, what: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value) or len(value) % 2 or len(value) > 512:
        raise ItemError(f"{what} is not lowercase hex")
    if bits is not None and len(value) != bits // 4:
        raise ItemError(f"{what} must have {bits // 4} hex digits")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ItemError(f"{what} is not a number")
    return float(value)


def _opt_int(value: object, what: str, *, low: int = 0, high: int = 2**63 - 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ItemError(f"{what} is not an integer in {low}..{high}")
    return value


def _text(value: object, what: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ItemError(f"{what} is not a text of at most {limit} characters")
    return "".join(ch for ch in value if ch.isprintable() or ch == "\n")


def check_hashes(value: object) -> dict[str, Any]:
    """Validate a ``hashes`` map: ``pdq`` (64 hex), ``pdq_dihedral`` (up to 8 x 64 hex), ``onnx`` (hex)."""
    if not isinstance(value, dict) or not value.get("pdq"):
        raise ItemError("hashes must hold at least a pdq hash")
    out: dict[str, Any] = {"pdq": _hex(value["pdq"], bits=PDQ.bits, what="the pdq hash")}
    variants = value.get("pdq_dihedral")
    if variants is not None:
        if not isinstance(variants, list) or len(variants) > 8:
            raise ItemError("pdq_dihedral is a list of at most 8 hashes")
        out["pdq_dihedral"] = [_hex(v, bits=PDQ.bits, what="a dihedral pdq hash") for v in variants]
    if value.get("onnx") is not None:
        out["onnx"] = _hex(value["onnx"], what="the learned hash")
    unknown = set(value) - {"pdq", "pdq_dihedral", "onnx"}
    if unknown:
        raise ItemError(f"unknown hash types {sorted(unknown)[:3]}")
    return out


def _pdq_set(hashes: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([hashes["pdq"], *hashes.get("pdq_dihedral", [])]))


# ----- attachments at rest -----------------------------------------------------------------------
def _rest_key(seed: bytes) -> bytes:
    return bytes(nacl.hash.blake2b(seed, key=_ATTACH_CONTEXT, digest_size=32,
                                   encoder=nacl.encoding.RawEncoder))


def seal_at_rest(data: bytes, authority_seed: bytes) -> bytes:
    """Encrypt an attached image for the store with a key derived from the authority's seed."""
    return bytes(nacl.secret.SecretBox(_rest_key(authority_seed)).encrypt(data))


def open_at_rest(sealed: bytes, authority_seed: bytes) -> bytes:
    """Decrypt an attached image from the store (raises ItemError with the wrong key)."""
    try:
        return bytes(nacl.secret.SecretBox(_rest_key(authority_seed)).decrypt(sealed))
    except nacl.exceptions.CryptoError:
        raise ItemError("the attachment does not open with this authority key") from None


# ----- report --------------------------------------------------------------------------------------
def _open_report(envelope: bytes, seed: bytes) -> OpenedItem:
    try:
        report = open_report(envelope, seed)
    except ReportError as exc:
        raise ItemError(str(exc)) from None
    return OpenedItem("report", {**asdict(report), "_ref": hashlib.sha256(envelope).hexdigest()[:32]}, b"",
                      str(report.reporter))


async def _prepare_report(item: OpenedItem, fetch: BlobFetcher | None) -> Prepared:
    b = item.body
    body = {
        "reporter": item.sender,
        "recipient": _text(b.get("recipient"), "recipient", 64),
        "created_at": _number(b.get("created_at"), "created_at"),
        "snapshot_version": _opt_int(b.get("snapshot_version"), "snapshot_version"),
        "snapshot_fingerprint": _text(b.get("snapshot_fingerprint"), "snapshot_fingerprint", 128) or None,
        "votes": _opt_int(b.get("votes"), "votes", high=4096),
        "quality": _opt_int(b.get("quality"), "quality", high=100),
        "hashes": {"pdq": _hex(b["pdq_hash"], bits=PDQ.bits, what="pdq_hash")} if b.get("pdq_hash") else {},
        "image_sha256": _hex(b.get("image_sha256"), bits=256, what="image_sha256"),
    }
    return Prepared(str(b["_ref"]), body)


# ----- submission ----------------------------------------------------------------------------------
async def _prepare_submission(item: OpenedItem, fetch: BlobFetcher | None) -> Prepared:
    b = item.body
    ref = b.get("submission_id")
    if not is_ref(ref):
        raise ItemError("submission_id is not 32 hex characters")
    body = {
        "submission_id": ref,
        "created_at": _number(b.get("created_at"), "created_at"),
        "hashes": check_hashes(b.get("hashes")),
        "quality": _opt_int(b.get("quality"), "quality", high=100),
    }
    return Prepared(str(ref), body)


def _apply_submission(ctx: ApplyContext) -> ApplyResult:
    from scanner.bank import NewEntry

    if ctx.decision.decision != "accepted":
        return ApplyResult({"added": 0}, False, "submission rejected")
    hashes = ctx.item.body["hashes"]
    quality = ctx.item.body.get("quality")
    quality = 100 if quality is None else int(quality)
    reference = f"submission {ctx.item.id} ({ctx.item.ref[:8]})"
    entries = [NewEntry("pdq", h, quality, label="submission", source=reference, origin=ctx.source_name)
               for h in _pdq_set(hashes)]
    if hashes.get("onnx"):
        entries.append(NewEntry("onnx", hashes["onnx"], 100, label="submission", source=reference,
                                origin=ctx.source_name))
    report = ctx.bank.add(entries, now=ctx.now)
    changed = report.added > 0 or report.sources_added > 0
    return ApplyResult({"added": report.added, "duplicates": report.duplicates,
                        "sources_added": report.sources_added}, changed,
                       f"submission accepted: {report.added} bank entries added, source {ctx.source_name}")


# ----- appeal --------------------------------------------------------------------------------------
async def _prepare_appeal(item: OpenedItem, fetch: BlobFetcher | None) -> Prepared:
    b = item.body
    ref = b.get("appeal_id")
    if not is_ref(ref):
        raise ItemError("appeal_id is not 32 hex characters")
    body: dict[str, Any] = {
        "appeal_id": ref,
        "created_at": _number(b.get("created_at"), "created_at"),
        "hashes": check_hashes(b.get("hashes")),
        "reason": _text(b.get("reason"), "reason", MAX_REASON),
        "snapshot_version": _opt_int(b.get("snapshot_version"), "snapshot_version"),
        "snapshot_fingerprint": _text(b.get("snapshot_fingerprint"), "snapshot_fingerprint", 128) or None,
        "votes": _opt_int(b.get("votes"), "votes", high=4096),
        "quality": _opt_int(b.get("quality"), "quality", high=100),
        "blocked": bool(b.get("blocked", False)),
    }
    attachment = b.get("attachment")
    image: bytes | None = None
    if attachment is not None:
        image, body["attachment"] = await _fetch_attachment(attachment, fetch)
    return Prepared(str(ref), body, image)


async def _fetch_attachment(value: object, fetch: BlobFetcher | None) -> tuple[bytes | None, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ItemError("attachment is not a map")
    blob, key, digest = value.get("blob"), value.get("key"), value.get("sha256")
    size = _opt_int(value.get("size"), "attachment size", high=MAX_ATTACHMENT)
    content_type = _text(value.get("content_type"), "content_type", 64)
    if not (isinstance(blob, str) and 0 < len(blob) <= 128 and isinstance(key, bytes) and len(key) == 32):
        raise ItemError("attachment blob or key malformed")
    digest = _hex(digest, bits=256, what="attachment sha256")
    info: dict[str, Any] = {"size": size, "content_type": content_type}
    if fetch is None:
        return None, {**info, "status": "not fetched"}
    from client.net import MissingAtRelay

    try:
        sealed = await fetch(blob)
    except MissingAtRelay:
        return None, {**info, "status": "unavailable at the relay"}
    try:
        image = bytes(nacl.secret.SecretBox(key).decrypt(sealed))
    except nacl.exceptions.CryptoError:
        raise ItemError("the attached image does not decrypt with its key") from None
    if hashlib.sha256(image).hexdigest() != digest or (size is not None and len(image) != size):
        raise ItemError("the attached image does not match its digest")
    return image, {**info, "status": "stored encrypted"}


def _apply_appeal(ctx: ApplyContext) -> ApplyResult:
    if ctx.decision.decision != "accepted":
        return ApplyResult({"removed": 0}, False, "appeal rejected")
    hashes = ctx.item.body["hashes"]
    reason = f"appeal {ctx.item.id} accepted by {ctx.decision.reviewer}: {ctx.decision.note}".strip()
    removed_total = 0
    nearest: dict[str, int] = {}
    queries = {"pdq": _pdq_set(hashes)}
    if hashes.get("onnx"):
        queries["onnx"] = [hashes["onnx"]]
    for algorithm, values in queries.items():
        found = ctx.bank.within([bytes.fromhex(v) for v in values], algorithm=algorithm,
                                distance=APPEAL_RADIUS[algorithm])
        if found:
            nearest[algorithm] = found[0][1]
            removed, _missing = ctx.bank.remove([h for h, _ in found], algorithm=algorithm, reason=reason,
                                                now=ctx.now)
            removed_total += removed
    return ApplyResult({"removed": removed_total, "nearest": nearest}, removed_total > 0,
                       f"appeal accepted: {removed_total} bank entries removed ({ctx.decision.note})")


register_envelope(b"PSRP", "report", _open_report)
register_kind(KindSpec("report", _prepare_report))
register_kind(KindSpec("submission", _prepare_submission, _apply_submission, notify_sender=True))
register_kind(KindSpec("appeal", _prepare_appeal, _apply_appeal, notify_sender=True))
