"""A malicious relay: a small websockets server speaking the real frame protocol (``relay.protocol``).

It authenticates anyone, announces whatever snapshot it is told to (any version, any declared
size), answers ``blob.get`` with whatever size it likes and streams filler chunks (it stops after
:attr:`HostileRelay.max_chunks` chunks and closes, so a client without a cap cannot run the test
out of memory), and records every request so a test can see what the client asked for.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from relay import protocol as p


@dataclass
class FakeBlob:
    data: bytes
    announced: int | None = None
    """Size claimed in ``blob.get`` replies (None: the true size)."""

    @property
    def size(self) -> int:
        return len(self.data) if self.announced is None else self.announced


@dataclass
class HostileRelay:
    blobs: dict[str, FakeBlob] = field(default_factory=dict)
    snapshot: tuple[int, str, int, bytes] | None = None
    """(version, blob id, declared size, sha256) answered to ``snapshot.get``."""
    max_chunks: int = 40
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    server: Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def serve_snapshot(self, version: int, data: bytes, *, declared_size: int | None = None) -> str:
        blob = os.urandom(12).hex()
        self.blobs[blob] = FakeBlob(data, declared_size)
        size = declared_size if declared_size is not None else len(data)
        self.snapshot = (version, blob, size, hashlib.sha256(data).digest())
        return blob

    def chunk_requests(self, blob: str) -> int:
        return sum(1 for t, f in self.requests if t == "blob.get" and f.get("blob") == blob)

    async def start(self) -> HostileRelay:
        self.server = await serve(self._handle, "127.0.0.1", 0, max_size=p.MAX_FRAME, compression=None)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _handle(self, ws: ServerConnection) -> None:
        await ws.send(p.encode(p.hello_frame(os.urandom(32), os.urandom(16), {})))
        served = 0
        try:
            async for data in ws:
                frame = p.decode(data)
                kind, rid = frame["t"], frame.get("id")
                self.requests.append((kind, frame))
                reply: dict[str, Any]
                if kind == "auth":
                    reply = p.ok_frame(rid, account=p.account_id_from_public_key(frame["pk"]), version=1,
                                       authority=False)
                elif kind == "snapshot.get" and self.snapshot is not None:
                    version, blob, size, digest = self.snapshot
                    reply = p.ok_frame(rid, version=version, blob=blob, size=size, sha256=digest)
                elif kind == "blob.get" and frame.get("blob") in self.blobs:
                    served += 1
                    if served > self.max_chunks:
                        await ws.close()
                        return
                    fake = self.blobs[frame["blob"]]
                    index = int(frame.get("chunk", 0))
                    piece = fake.data[index * p.BLOB_CHUNK:(index + 1) * p.BLOB_CHUNK]
                    if not piece and index * p.BLOB_CHUNK < fake.size:
                        piece = bytes(min(p.BLOB_CHUNK, fake.size - index * p.BLOB_CHUNK))
                    chunks = max(1, math.ceil(fake.size / p.BLOB_CHUNK))
                    reply = p.ok_frame(rid, chunks=chunks, size=fake.size, data=piece)
                elif kind in ("prekeys.count", "prekeys.put"):
                    reply = p.ok_frame(rid, otks=100)
                elif kind == "ack":
                    reply = p.ok_frame(rid, acked=list(frame.get("mids", [])))
                elif kind == "send":
                    reply = p.ok_frame(rid, mid=os.urandom(8).hex(), ts=time.time(), dup=False)
                else:
                    reply = p.error_frame(rid, p.ErrorCode.NOT_FOUND, "nothing here")
                await ws.send(p.encode(reply))
        except ConnectionClosed:
            return
