"""Request field names the relay fuzz tests draw from (every field of docs/protocol.md's requests)."""

from __future__ import annotations

REQUEST_FIELDS = [
    "t",
    "id",
    "to",
    "env",
    "cid",
    "ack",
    "mids",
    "bundle",
    "otks",
    "replace",
    "account",
    "data",
    "blob",
    "final",
    "chunk",
    "version",
    "sha256",
    "v",
    "pk",
    "sig",
]
