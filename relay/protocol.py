"""Sans-I/O codec of the pocketscan relay protocol (docs/protocol.md, "Frames" and "Authentication").

This module has no sockets, no clock and no asyncio: it turns bytes into validated message
objects and back, and defines the authentication transcript and the account id. The relay
server (``relay/ws.py``), the client library (``relay/client.py``) and the tests share it.

Every frame is one binary WebSocket message holding one CBOR map with text keys. ``"t"`` names
the type; requests carry an ``"id"`` (an integer the client picks) and receive exactly one
``ok`` or ``error`` reply with the same id. The server also sends unsolicited ``hello``, ``msg``
and ``snapshot`` frames.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import cbor2

from relay.errors import ProtocolError

__all__ = [
    "ACCOUNT_ID_LEN",
    "BLOB_CHUNK",
    "CID_MAX",
    "MAX_ACK_BATCH",
    "MAX_BLOB",
    "MAX_ENVELOPE",
    "MAX_FRAME",
    "MAX_OTKS",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "Ack",
    "Auth",
    "BlobGet",
    "BlobPut",
    "ErrorCode",
    "PrekeysCount",
    "PrekeysGet",
    "PrekeysPut",
    "Request",
    "Send",
    "SnapshotGet",
    "SnapshotPublish",
    "account_id_from_public_key",
    "auth_transcript",
    "decode",
    "decode_request",
    "encode",
    "is_account_id",
    "relay_authority",
]

PROTOCOL_VERSION = 1
"""The newest protocol version this code speaks."""
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
"""Versions the server offers in ``hello``; the client picks one in ``auth``."""

MAX_ENVELOPE = 256 * 1024
"""Largest envelope (opaque ciphertext) accepted by ``send``."""
BLOB_CHUNK = 256 * 1024
"""Largest data chunk of ``blob.put`` / ``blob.get``."""
MAX_BLOB = 25 * 1024 * 1024
"""Largest attachment blob."""
MAX_FRAME = MAX_ENVELOPE + 16 * 1024
"""Largest frame on the wire (an envelope or chunk plus field overhead)."""
MAX_ACK_BATCH = 512
"""Most message ids in one ``ack``."""
MAX_OTKS = 200
"""Most one-time prekeys in one ``prekeys.put``."""
MAX_BUNDLE = 16 * 1024
"""Largest signed prekey bundle."""
MAX_OTK = 1024
"""Largest single one-time prekey."""
CID_MAX = 32
"""Longest client message id (idempotency key) of ``send``."""
ACCOUNT_ID_LEN = 32
"""Length of an account id: base32 of 20 bytes without padding."""
MAX_SNAPSHOT = 512 * 1024 * 1024
"""Largest snapshot a publisher may announce."""

_AUTH_DOMAIN = b"pocketscan-relay-auth\x00"
_B32_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


BLOB_ID_MAX = 64
"""Longest blob id a request may name (the relay issues 32-character ids)."""
MID_MAX = 64
"""Longest message id (``mid``) a request may name."""
_BLOB_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ErrorCode:
    """Error codes carried by ``error`` replies (docs/protocol.md, "Errors")."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    UNAUTHORIZED = "unauthorized"
    AUTH_FAILED = "auth_failed"
    VERSION = "unsupported_version"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    QUOTA = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    STALE = "stale_version"
    INTERNAL = "internal"


def account_id_from_public_key(public_key: bytes) -> str:
    """Account id of an Ed25519 public key: base32 (lowercase, unpadded) of SHA-256(key)[:20].

    The client's ``client/crypto/identity.py`` implements the same formula; a test checks they agree.
    """
    if len(public_key) != 32:
        raise ProtocolError("an Ed25519 public key has 32 bytes")
    digest = hashlib.sha256(public_key).digest()[:20]
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")


def is_account_id(value: object) -> bool:
    """True if ``value`` is shaped like an account id (does not say whether it exists)."""
    return isinstance(value, str) and len(value) == ACCOUNT_ID_LEN and set(value) <= _B32_ALPHABET


def relay_authority(url: str) -> str:
    """The ``host:port`` a client connected to, normalised: what the auth transcript binds.

    Host lowercased (IPv6 in brackets), port explicit (``ws`` defaults to 80, ``wss`` to 443), so
    ``ws://LocalHost:8765/`` and ``ws://localhost:8765`` give ``localhost:8765``.

    Raises:
        ProtocolError: not a ``ws://`` or ``wss://`` URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ProtocolError(f"not a relay URL: {url!r} ({exc})") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ProtocolError(f"a relay URL is ws://HOST:PORT or wss://HOST:PORT, not {url!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None:
        port = 443 if parts.scheme == "wss" else 80
    return f"{host}:{port}"


def auth_transcript(nonce: bytes, connection_id: bytes, version: int, relay: str) -> bytes:
    """Bytes the client signs to authenticate: domain, version, connection id, server nonce and relay.

    ``relay`` is :func:`relay_authority` of the URL the client connected to: a relay that passes its
    challenge on to another relay gets a signature naming itself, which the other relay refuses.
    """
    name = relay.encode("utf-8")
    if len(name) > 255:
        raise ProtocolError("relay host:port is longer than 255 bytes")
    return b"".join(
        (
            _AUTH_DOMAIN,
            struct.pack(">H", version),
            struct.pack(">B", len(connection_id)),
            connection_id,
            struct.pack(">B", len(nonce)),
            nonce,
            struct.pack(">B", len(name)),
            name,
        )
    )


def encode(frame: dict[str, Any]) -> bytes:
    """Encode one frame (a map with a ``"t"`` key) as CBOR."""
    return cbor2.dumps(frame)


def decode(data: bytes | str, *, max_size: int = MAX_FRAME) -> dict[str, Any]:
    """Decode one frame, checking size, CBOR well-formedness and the ``"t"`` key.

    Raises:
        ProtocolError: the frame is text, too large, not CBOR, not a map or lacks a type.
    """
    if isinstance(data, str):
        raise ProtocolError("text frames are not part of the protocol; send binary CBOR frames")
    if len(data) > max_size:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        frame = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types (CBORDecodeError, ValueError, ...)
        raise ProtocolError(f"frame is not valid CBOR: {type(exc).__name__}") from None
    if not isinstance(frame, dict):
        raise ProtocolError("a frame must be a CBOR map")
    kind = frame.get("t")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise ProtocolError("a frame needs a text 't' (type) field")
    for key in frame:
        if not isinstance(key, str):
            raise ProtocolError("frame keys must be text")
    return frame


# --- requests (client -> server) --------------------------------------------------------------


class FieldError(ProtocolError):
    """A decodable request with a missing, mistyped or out-of-range field (the connection goes on).

    ``code`` is ``bad_request``, or ``too_large`` for an envelope, chunk, bundle or prekey over its
    size limit; ``request_id`` is the request's id (None if it had no valid one).
    """

    def __init__(
        self, message: str, *, code: str = ErrorCode.BAD_REQUEST, request_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def _check_bytes(value: object, name: str, lo: int, hi: int, *, sized: bool = False) -> bytes:
    """A byte string of ``lo..hi`` bytes; ``sized`` fields over ``hi`` are ``too_large``."""
    if not isinstance(value, bytes):
        raise FieldError(f"'{name}' must be a byte string")
    if sized and len(value) > hi:
        raise FieldError(f"'{name}' has {len(value)} bytes; the limit is {hi}", code=ErrorCode.TOO_LARGE)
    if not lo <= len(value) <= hi:
        raise FieldError(f"'{name}' must have {lo}..{hi} bytes, not {len(value)}")
    return value


def _check_int(value: object, name: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise FieldError(f"'{name}' must be an integer in {lo}..{hi}")
    return value


def _check_account(value: object, name: str) -> str:
    if not is_account_id(value):
        raise FieldError(f"'{name}' must be an account id ({ACCOUNT_ID_LEN} base32 characters)")
    assert isinstance(value, str)
    return value


def _check_token(value: object, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MID_MAX or not value.isascii():
        raise FieldError(f"'{name}' must be an ASCII string of 1..{MID_MAX} characters")
    return value


def _check_blob_id(value: object, name: str = "blob") -> str:
    if not is_blob_id(value):
        raise FieldError(f"'{name}' must be a blob id (1..{BLOB_ID_MAX} characters of A-Z a-z 0-9 - _)")
    assert isinstance(value, str)
    return value


def is_blob_id(value: object) -> bool:
    """True if ``value`` is shaped like a blob id (does not say whether it exists)."""
    return isinstance(value, str) and 1 <= len(value) <= BLOB_ID_MAX and set(value) <= _BLOB_ID_ALPHABET


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"'{name}' must be a boolean")
    return value


def _parse_mids(value: object, *, allow_empty: bool) -> tuple[str, ...]:
    lo = 0 if allow_empty else 1
    if not isinstance(value, list) or not lo <= len(value) <= MAX_ACK_BATCH:
        raise FieldError(f"message ids must be a list of {lo}..{MAX_ACK_BATCH} ids")
    return tuple(_check_token(m, "mid") for m in value)


@dataclass(frozen=True, slots=True)
class Request:
    """Base of every client request; ``id`` is echoed in the reply."""

    TYPE: ClassVar[str] = ""
    id: int

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> Self:
        """Build the request from a decoded frame (requests with fields beyond ``id`` override this)."""
        return cls(id=frame["id"])

    def to_frame(self) -> dict[str, Any]:
        """The frame map of this request."""
        out: dict[str, Any] = {"t": self.TYPE}
        for f in fields(self):
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True, slots=True)
class Auth(Request):
    """Answer to ``hello``: chosen version, public key and signature of :func:`auth_transcript`."""

    TYPE: ClassVar[str] = "auth"
    v: int
    pk: bytes
    sig: bytes

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> Auth:
        return cls(
            id=frame["id"],
            v=_check_int(frame.get("v"), "v", 0, 65535),
            pk=_check_bytes(frame.get("pk"), "pk", 32, 32),
            sig=_check_bytes(frame.get("sig"), "sig", 64, 64),
        )


@dataclass(frozen=True, slots=True)
class Send(Request):
    """Store ``env`` (opaque bytes) in the mailbox of ``to``; ``cid`` makes retries idempotent."""

    TYPE: ClassVar[str] = "send"
    to: str
    env: bytes
    cid: bytes
    ack: tuple[str, ...] = ()
    """Optional piggybacked acknowledgements of the caller's own delivered messages."""

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> Send:
        return cls(
            id=frame["id"],
            to=_check_account(frame.get("to"), "to"),
            env=_check_bytes(frame.get("env"), "env", 1, MAX_ENVELOPE, sized=True),
            cid=_check_bytes(frame.get("cid"), "cid", 8, CID_MAX),
            ack=_parse_mids(frame.get("ack", []), allow_empty=True),
        )

    def to_frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.TYPE, "id": self.id, "to": self.to, "env": self.env, "cid": self.cid}
        if self.ack:
            out["ack"] = list(self.ack)
        return out


@dataclass(frozen=True, slots=True)
class Ack(Request):
    """Delete delivered messages (by server id) from the caller's own mailbox."""

    TYPE: ClassVar[str] = "ack"
    mids: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> Ack:
        return cls(id=frame["id"], mids=_parse_mids(frame.get("mids"), allow_empty=False))

    def to_frame(self) -> dict[str, Any]:
        return {"t": self.TYPE, "id": self.id, "mids": list(self.mids)}


@dataclass(frozen=True, slots=True)
class PrekeysPut(Request):
    """Publish the caller's signed bundle (opaque) and add one-time prekeys (each handed out once)."""

    TYPE: ClassVar[str] = "prekeys.put"
    bundle: bytes | None
    otks: tuple[bytes, ...] = ()
    replace: bool = False

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> PrekeysPut:
        bundle = frame.get("bundle")
        if bundle is not None:
            bundle = _check_bytes(bundle, "bundle", 1, MAX_BUNDLE, sized=True)
        otks = frame.get("otks", [])
        if not isinstance(otks, list):
            raise FieldError(f"'otks' must be a list of at most {MAX_OTKS} byte strings")
        if len(otks) > MAX_OTKS:
            raise FieldError(
                f"'otks' holds {len(otks)} keys; the limit is {MAX_OTKS}", code=ErrorCode.TOO_LARGE
            )
        return cls(
            id=frame["id"],
            bundle=bundle,
            otks=tuple(_check_bytes(k, "otks[]", 1, MAX_OTK, sized=True) for k in otks),
            replace=_check_bool(frame.get("replace", False), "replace"),
        )

    def to_frame(self) -> dict[str, Any]:
        return {
            "t": self.TYPE,
            "id": self.id,
            "bundle": self.bundle,
            "otks": list(self.otks),
            "replace": self.replace,
        }


@dataclass(frozen=True, slots=True)
class PrekeysGet(Request):
    """Fetch another account's bundle and consume one of its one-time prekeys (if any is left)."""

    TYPE: ClassVar[str] = "prekeys.get"
    account: str

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> PrekeysGet:
        return cls(id=frame["id"], account=_check_account(frame.get("account"), "account"))


@dataclass(frozen=True, slots=True)
class PrekeysCount(Request):
    """How many of the caller's one-time prekeys are left (so it can upload more)."""

    TYPE: ClassVar[str] = "prekeys.count"


@dataclass(frozen=True, slots=True)
class BlobPut(Request):
    """Upload one chunk of a blob; the first chunk (no ``blob``) creates it; ``final`` seals it."""

    TYPE: ClassVar[str] = "blob.put"
    data: bytes
    blob: str | None = None
    final: bool = False

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> BlobPut:
        blob = frame.get("blob")
        if blob is not None:
            blob = _check_blob_id(blob)
        return cls(
            id=frame["id"],
            data=_check_bytes(frame.get("data"), "data", 0, BLOB_CHUNK, sized=True),
            blob=blob,
            final=_check_bool(frame.get("final", False), "final"),
        )


@dataclass(frozen=True, slots=True)
class BlobGet(Request):
    """Download chunk ``chunk`` of a sealed blob."""

    TYPE: ClassVar[str] = "blob.get"
    blob: str
    chunk: int = 0

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> BlobGet:
        return cls(
            id=frame["id"],
            blob=_check_blob_id(frame.get("blob")),
            chunk=_check_int(frame.get("chunk", 0), "chunk", 0, MAX_SNAPSHOT // BLOB_CHUNK + 1),
        )


@dataclass(frozen=True, slots=True)
class SnapshotGet(Request):
    """Ask for the newest snapshot's version, size, SHA-256 and blob id."""

    TYPE: ClassVar[str] = "snapshot.get"


@dataclass(frozen=True, slots=True)
class SnapshotPublish(Request):
    """Authority only: make an uploaded blob the newest snapshot with this version."""

    TYPE: ClassVar[str] = "snapshot.publish"
    version: int
    blob: str
    sha256: bytes

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> SnapshotPublish:
        return cls(
            id=frame["id"],
            version=_check_int(frame.get("version"), "version", 1, 2**63 - 1),
            blob=_check_blob_id(frame.get("blob")),
            sha256=_check_bytes(frame.get("sha256"), "sha256", 32, 32),
        )


REQUEST_TYPES: dict[str, type[Request]] = {
    cls.TYPE: cls
    for cls in (
        Auth,
        Send,
        Ack,
        PrekeysPut,
        PrekeysGet,
        PrekeysCount,
        BlobPut,
        BlobGet,
        SnapshotGet,
        SnapshotPublish,
    )
}


class UnknownType(ProtocolError):
    """A well-formed request of a type this server does not know (the connection may go on)."""

    def __init__(self, kind: str, request_id: int) -> None:
        super().__init__(f"unknown request type {kind[:64]!r}")
        self.request_id = request_id


def request_id_of(frame: dict[str, Any]) -> int | None:
    """The request id of a decoded frame, if it has a valid one."""
    rid = frame.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**53:
        return rid
    return None


def decode_request(data: bytes | str, *, max_size: int = MAX_FRAME) -> Request:
    """Decode and validate one client request.

    Raises:
        UnknownType: a valid frame with an unknown type (reply with an error, keep the connection).
        FieldError: a decodable frame whose id or fields are invalid (reply with an error carrying
            the id when it is readable, keep the connection).
        ProtocolError: frame-level garbage: not binary CBOR, not a map, no type, too large (close).
    """
    frame = decode(data, max_size=max_size)
    rid = request_id_of(frame)
    if rid is None:
        raise FieldError("a request needs an integer 'id' in 0..2**53-1")
    cls = REQUEST_TYPES.get(frame["t"])
    if cls is None:
        raise UnknownType(frame["t"], rid)
    try:
        return cls.parse(frame)
    except FieldError as exc:
        exc.request_id = rid
        raise
    except (TypeError, ValueError, KeyError) as exc:  # defensive: every parse check raises FieldError
        raise FieldError(f"invalid {cls.TYPE} request: {type(exc).__name__}", request_id=rid) from None


__all__ += [
    "BLOB_ID_MAX",
    "MID_MAX",
    "REQUEST_TYPES",
    "FieldError",
    "UnknownType",
    "is_blob_id",
    "request_id_of",
]


# --- server frames (server -> client) ---------------------------------------------------------


def hello_frame(nonce: bytes, connection_id: bytes, limits: dict[str, int]) -> dict[str, Any]:
    """First frame of every connection: versions offered, fresh nonce and connection id."""
    return {
        "t": "hello",
        "versions": list(SUPPORTED_VERSIONS),
        "nonce": nonce,
        "conn": connection_id,
        "limits": limits,
    }


def ok_frame(request_id: int, **result: Any) -> dict[str, Any]:
    """Success reply to request ``request_id``."""
    return {"t": "ok", "id": request_id, **result}


def error_frame(request_id: int | None, code: str, message: str) -> dict[str, Any]:
    """Error reply; ``request_id`` is None when the offending frame had no readable id."""
    return {"t": "error", "id": request_id, "code": code, "msg": message}


def msg_frame(mid: str, sender: str, ts: float, env: bytes) -> dict[str, Any]:
    """Push of one stored envelope to its recipient."""
    return {"t": "msg", "mid": mid, "from": sender, "ts": ts, "env": env}


def snapshot_frame(version: int, blob: str, size: int, sha256: bytes) -> dict[str, Any]:
    """Push telling a client a newer snapshot exists (also the body of ``snapshot.get``'s reply)."""
    return {"t": "snapshot", "version": version, "blob": blob, "size": size, "sha256": sha256}


def prekeys_low_frame(count: int) -> dict[str, Any]:
    """Push telling a client that only ``count`` of its one-time prekeys are left (upload more)."""
    return {"t": "prekeys.low", "otks": count}


__all__ += ["error_frame", "hello_frame", "msg_frame", "ok_frame", "prekeys_low_frame", "snapshot_frame"]
