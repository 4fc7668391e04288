"""The device's connection to the authority's OPRF service (the only network code of :mod:`scanner`).

A blocking websocket client (``websockets.sync``) that implements :class:`scanner.matcher.OprfTransport`:
it answers the service's challenge by signing it with the caller's Ed25519 key (the profile's account key,
or a fresh key per client for anonymous callers), then sends one binary request per image and returns the
service's ``proof || evaluated elements``. Every failure (unreachable, refused, rate-limited, malformed)
raises :class:`~scanner.errors.OprfError` with one readable line. The wire format is in
``docs/snapshot-format.md`` section 11.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import nacl.signing

from scanner.errors import OprfError
from scanner.oprf import (
    AUTH_CONTEXT,
    MAX_FRAME,
    PROTOCOL_VERSION,
    decode_response,
    encode_request,
)

__all__ = ["OprfServiceClient"]

_MAX_TEXT = 4096


class OprfServiceClient:
    """A lazily connected, reconnecting client of ``pocketscan authority oprf`` (thread-safe)."""

    def __init__(self, url: str, *, signing_seed: bytes | None = None, timeout: float = 10.0) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise OprfError(f"OPRF service URL must start with ws:// or wss:// (got {url!r})")
        self.url = url
        self.timeout = timeout
        self._signer = (
            nacl.signing.SigningKey(signing_seed) if signing_seed else nacl.signing.SigningKey.generate()
        )
        self._ws: Any = None
        self._next_id = 1
        self._lock = threading.Lock()
        self.limits: dict[str, Any] = {}
        self.oprf_public_key: bytes | None = None
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def account_public_key(self) -> bytes:
        """The Ed25519 public key this client authenticates with."""
        return bytes(self._signer.verify_key)

    def _recv_json(self) -> dict[str, Any]:
        msg = self._ws.recv(timeout=self.timeout)
        if not isinstance(msg, str) or len(msg) > _MAX_TEXT:
            raise OprfError("unexpected message from the OPRF service")
        self.bytes_received += len(msg)
        try:
            data = json.loads(msg)
        except ValueError:
            raise OprfError("malformed message from the OPRF service") from None
        if not isinstance(data, dict):
            raise OprfError("malformed message from the OPRF service")
        if data.get("type") == "error":
            raise OprfError(f"OPRF service refused: {str(data.get('message', 'error'))[:200]}")
        return data

    def _connect(self) -> None:
        from websockets.sync.client import connect

        try:
            # A long-lived connection reused across images (legacy=True: not only inside a with block).
            self._ws = connect(
                self.url,
                open_timeout=self.timeout,
                max_size=MAX_FRAME,
                compression=None,
                close_timeout=2,
                legacy=True,
            )
        except (OSError, TimeoutError) as exc:
            raise OprfError(f"OPRF service {self.url} unreachable: {exc}") from None
        except Exception as exc:  # websockets' handshake errors
            raise OprfError(f"OPRF service {self.url} unreachable: {exc}") from None
        try:
            hello = self._recv_json()
            if hello.get("type") != "challenge" or hello.get("version") != PROTOCOL_VERSION:
                raise OprfError("the OPRF service speaks another protocol version")
            nonce = bytes.fromhex(str(hello.get("nonce", "")))
            if len(nonce) != 32:
                raise OprfError("malformed challenge from the OPRF service")
            signature = self._signer.sign(AUTH_CONTEXT + nonce).signature
            auth = json.dumps(
                {"type": "auth", "public_key": self.account_public_key.hex(), "signature": signature.hex()}
            )
            self._ws.send(auth)
            self.bytes_sent += len(auth)
            ready = self._recv_json()
            if ready.get("type") != "ready":
                raise OprfError("the OPRF service did not accept the connection")
            self.limits = dict(ready.get("limits") or {})
            key = bytes.fromhex(str(ready.get("oprf_public_key", "")))
            self.oprf_public_key = key if len(key) == 32 else None
        except (ValueError, TimeoutError) as exc:
            self.close()
            raise OprfError(f"OPRF service handshake failed: {exc}") from None
        except OprfError:
            self.close()
            raise
        except Exception as exc:  # connection closed during the handshake
            self.close()
            raise OprfError(f"OPRF service handshake failed: {exc}") from None

    def evaluate(self, request: bytes, count: int) -> bytes:
        """Send one batch (``count`` blinded elements) and return ``proof || evaluated elements``."""
        with self._lock:
            if self._ws is None:
                self._connect()
            request_id = self._next_id
            self._next_id = (self._next_id + 1) % (1 << 32)
            frame = encode_request(request_id, request, count)
            try:
                self._ws.send(frame)
                self.bytes_sent += len(frame)
                msg = self._ws.recv(timeout=self.timeout)
            except TimeoutError:
                self.close()
                raise OprfError(f"OPRF service did not answer within {self.timeout:g} s") from None
            except Exception as exc:  # connection closed
                self.close()
                raise OprfError(f"OPRF service connection lost: {exc}") from None
            if isinstance(msg, str):
                self.bytes_received += len(msg)
                try:
                    data = json.loads(msg)
                except ValueError:
                    raise OprfError("malformed message from the OPRF service") from None
                reason = str(data.get("message", "refused"))[:200] if isinstance(data, dict) else "refused"
                raise OprfError(f"OPRF service refused: {reason}")
            self.bytes_received += len(msg)
            got_id, evaluation = decode_response(msg)
            if got_id != request_id:
                raise OprfError("OPRF answer does not belong to the request")
            return evaluation

    def close(self) -> None:
        """Close the connection (a later :meth:`evaluate` reconnects)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # already closed
                ws.close()
