"""A malicious peer: a real account on a real relay on loopback, speaking the real wire protocol.

The attacker is a modified client: it uses its own session to encrypt whatever plaintext it
likes (any CBOR, any id, any pointer) and uploads whatever blobs it likes. The victim is an
unmodified :class:`client.core.Core` (or a ``pocketscan`` subprocess) and is only observed from
outside: its store through the public API, its profile folder, its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from client.core import Core
from client.crypto.attachments import _seal
from client.demo.world import AuthorityIdentity, RelayHandle, make_profile, start_relay

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
COFFEE = SAMPLES / "coffee.jpg"
_PAD = 160


def pad(raw: bytes) -> bytes:
    """The content padding every client applies (0x80 then zeros to a multiple of 160 bytes)."""
    raw += b"\x80"
    return raw + bytes(-len(raw) % _PAD)


def content(kind: str = "text", msg_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A content map as a genuine client would build it; override any field to make it hostile."""
    d: dict[str, Any] = {"v": 1, "k": kind, "id": msg_id or os.urandom(12).hex(), "t": 1_790_000_000.0}
    d.update(fields)
    return d


class Attacker:
    """A real account that sends crafted plaintext through its real session."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def account_id(self) -> str:
        return self.core.account_id

    async def send_plaintext(self, victim: str, plaintext: bytes) -> None:
        """Encrypt ``plaintext`` (any bytes) in the session with ``victim`` and send it."""
        core = self.core
        async with core.lock:
            record = await core._session_for(victim)
            payload = record.encrypt(plaintext)
            core.store.sessions.save(record)
        await core.net.send_now(victim, payload, os.urandom(16))

    async def send_content(self, victim: str, d: dict[str, Any] | bytes) -> None:
        raw = d if isinstance(d, bytes) else bytes(cbor2.dumps(d))
        await self.send_plaintext(victim, pad(raw))

    async def send_envelope(self, victim: str, payload: bytes) -> None:
        """An envelope that is not even a ratchet message."""
        await self.core.net.send_now(victim, payload, os.urandom(16))

    async def upload_image(self, data: bytes, *, content_type: str = "image/png", width: int | None = None,
                           height: int | None = None) -> dict[str, Any]:
        """Encrypt and upload an attachment like a client; return its pointer dict (to tamper with)."""
        sealed = _seal(data, content_type, width, height, None, os.urandom)
        blob_id = await self.core.net.upload_blob(sealed.blob)
        pointer = sealed.pointer.to_dict()
        pointer["blob_id"] = blob_id
        return pointer

    async def upload_raw(self, blob: bytes) -> str:
        return await self.core.net.upload_blob(blob)


@dataclass
class Arena:
    root: Path
    relay: RelayHandle
    authority: AuthorityIdentity
    victim: Core
    friend: Core
    attackers: list[Attacker]

    @property
    def attacker(self) -> Attacker:
        return self.attackers[0]


@contextlib.asynccontextmanager
async def arena(tmp: Path, *, attackers: int = 1, victim_online: bool = True) -> AsyncIterator[Arena]:
    """A real relay, a victim, a friend of the victim and ``attackers`` hostile accounts."""
    authority = AuthorityIdentity.generate()
    relay = await start_relay(tmp / "relay.sqlite", authorities=[authority.public_key])
    cores: list[Core] = []
    try:
        victim = make_profile(tmp, "victim", relay=relay.url, authority=authority, policy="off")
        cores.append(victim)
        friend = make_profile(tmp, "friend", relay=relay.url, authority=authority, policy="off")
        cores.append(friend)
        bad = []
        for i in range(attackers):
            core = make_profile(tmp, f"mallory{i}", relay=relay.url, authority=authority, policy="off")
            cores.append(core)
            await core.add_contact(victim.account_id, "victim")
            bad.append(Attacker(core))
        await friend.add_contact(victim.account_id, "victim")
        await victim.add_contact(friend.account_id, "friend")
        for core in cores:
            assert await core.publish_now()
        if not victim_online:
            await victim.stop()
        yield Arena(tmp, relay, authority, victim, friend, bad)
    finally:
        for core in cores:
            with contextlib.suppress(Exception):
                await core.stop()
        await relay.stop()


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> float:
    """Wait for ``cond``; return the seconds it took (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        if cond():
            return loop.time() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not reached within {timeout} s")


def shown(core: Core, peer: str) -> list[str]:
    """The texts of ``peer``'s conversation as the victim shows them."""
    return [m.text for m in core.messages(peer, limit=5000)]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# ----- hostile images, generated (nothing large is stored in the repository) -------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_png(width: int, height: int, *, rgba: bool = False) -> bytes:
    """A valid, fully decodable PNG of one flat colour; a 169 MP one compresses to ~170 KB.

    Streamed through zlib row by row, so generating it needs almost no memory.
    """
    bands = 4 if rgba else 3
    row = b"\x00" + bytes(width * bands)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if rgba else 2, 0, 0, 0)
    idat = _chunk(b"IDAT", b"".join(parts))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")
