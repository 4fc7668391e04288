"""Errors raised by the relay and its client library.

Tree::

    RelayError                  base of every relay error
    ├── ProtocolError           a frame that is not valid protocol (bad CBOR, bad fields, too large)
    ├── AuthError               authentication failed (bad signature, unknown version, not allowed)
    ├── RequestFailed           the relay answered a request with an error reply (has ``code``)
    ├── LimitExceeded           a size, quota or rate limit was hit (has ``code``)
    ├── NotFound                no such mailbox entry, blob, bundle or snapshot
    └── ConnectionLost          the connection closed before a reply arrived
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConnectionLost",
    "LimitExceeded",
    "NotFound",
    "ProtocolError",
    "RelayError",
    "RequestFailed",
]


class RelayError(Exception):
    """Something went wrong talking to or inside the relay."""


class ProtocolError(RelayError):
    """A frame could not be decoded or does not follow docs/protocol.md."""


class AuthError(RelayError):
    """Authentication with the relay failed."""


class RequestFailed(RelayError):
    """The relay answered a request with an error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"relay refused the request ({code}): {message}")
        self.code = code
        self.message = message


class LimitExceeded(RelayError):
    """A size, quota or rate limit was exceeded."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotFound(RelayError):
    """The named item does not exist, expired, or is not yours to see."""


class ConnectionLost(RelayError):
    """The connection to the relay closed before the reply arrived."""
