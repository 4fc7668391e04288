"""A malicious client and a malicious relay that speak the real wire protocol (test helpers).

``RawClient`` drives one WebSocket connection frame by frame: it sends whatever CBOR (or bytes) a
test hands it, with the ids it chooses, and reads the relay's replies and pushes as they come, the
way an attacker with one free account can. ``ChallengeRelay`` is a relay in the middle: it accepts a
victim's connection and passes the victim's authentication on to a real relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import nacl.signing
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from relay import protocol as p

__all__ = ["ChallengeRelay", "RawClient", "sign_auth"]


def sign_auth(key: nacl.signing.SigningKey, hello: dict[str, Any], url: str) -> dict[str, Any]:
    """The ``auth`` request answering ``hello`` on a connection to ``url``, signed with ``key``."""
    relay_authority = getattr(p, "relay_authority", None)
    if relay_authority is None:  # relays before the host:port binding: lets this suite run against them
        transcript = p.auth_transcript(hello["nonce"], hello["conn"], 1)  # type: ignore[call-arg]
    else:
        transcript = p.auth_transcript(hello["nonce"], hello["conn"], 1, relay_authority(url))
    sig = key.sign(transcript).signature
    return {"t": "auth", "id": 0, "v": 1, "pk": bytes(key.verify_key), "sig": sig}


class RawClient:
    """One connection driven frame by frame."""

    def __init__(self, ws: ClientConnection, key: nacl.signing.SigningKey) -> None:
        self.ws = ws
        self.key = key
        self.account = p.account_id_from_public_key(bytes(key.verify_key))
        self.pushes: list[dict[str, Any]] = []
        """Unsolicited frames (msg, snapshot, prekeys.low) seen while waiting for replies."""
        self._ids = itertools.count(1000)

    @classmethod
    async def connect(cls, url: str, key: nacl.signing.SigningKey | None = None) -> RawClient:
        """Connect and authenticate (raises AssertionError if the relay refuses)."""
        key = key or nacl.signing.SigningKey.generate()
        ws = await connect(url, max_size=None, compression=None, close_timeout=1)
        self = cls(ws, key)
        hello = p.decode(await asyncio.wait_for(ws.recv(), 5))
        assert hello["t"] == "hello"
        reply = await self.request(sign_auth(key, hello, url))
        assert reply["t"] == "ok", reply
        return self

    async def close(self) -> None:
        await self.ws.close()

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def next_frame(self, timeout: float = 5.0) -> dict[str, Any]:
        return p.decode(await asyncio.wait_for(self.ws.recv(), timeout), max_size=1 << 30)

    async def reply_to(self, rid: int | None, timeout: float = 5.0) -> dict[str, Any]:
        """The next ``ok``/``error`` with id ``rid``; pushes on the way are kept in :attr:`pushes`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next_frame(max(0.01, deadline - loop.time()))
            if frame["t"] in ("ok", "error") and frame.get("id") == rid:
                return frame
            self.pushes.append(frame)

    async def request(self, frame: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send ``frame`` (given an id if it has none) and return its reply."""
        frame = dict(frame)
        frame.setdefault("id", next(self._ids))
        await self.ws.send(p.encode(frame))
        return await self.reply_to(frame["id"], timeout)

    async def is_open(self) -> bool:
        """True if the relay still answers on this connection."""
        try:
            reply = await self.request({"t": "prekeys.count"}, timeout=5)
        except (ConnectionClosed, TimeoutError):
            return False
        return reply["t"] == "ok"


class ChallengeRelay:
    """A hostile relay: a victim connects to it; it opens its own connection to ``target`` and
    relays frames both ways, so the victim answers the target's challenge."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.target_replies: list[dict[str, Any]] = []
        """What the target relay answered to the relayed ``auth``."""
        self._server: Server | None = None
        self.url = ""

    async def start(self) -> ChallengeRelay:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, victim: ServerConnection) -> None:
        async with connect(self.target, max_size=None, compression=None, close_timeout=1) as upstream:

            async def down() -> None:
                async for data in upstream:
                    frame = p.decode(data, max_size=1 << 30)
                    if frame["t"] in ("ok", "error") and frame.get("id") is not None:
                        self.target_replies.append(frame)
                    await victim.send(data)

            async def up() -> None:
                async for data in victim:
                    await upstream.send(data)

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
