"""A self-contained pocketscan world on loopback: relay, bank authority, demo bank and snapshot, profiles.

Used by ``pocketscan demo``, the end-to-end tests and ``pocketscan bench overhead``: everything is
real (a relay server on a free loopback port with its SQLite file, an Ed25519 authority key, a
signed snapshot built from real photos, encrypted profiles), nothing needs the network.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing

from client.core import Core
from client.locations import Profile
from client.policy import PolicyName

__all__ = [
    "DEMO_BANKED",
    "AuthorityIdentity",
    "RelayHandle",
    "build_snapshot",
    "sample_images",
    "start_relay",
]

DEMO_BANKED: tuple[str, ...] = ("rocket.jpg", "astronaut.jpg", "camera.jpg")
"""Sample photos the demo bank holds (the other five are not banked)."""


def sample_images() -> list[Path]:
    """The photos shipped in ``samples/`` (sorted)."""
    from client.samples import sample_dir

    return sorted(p for p in sample_dir().glob("*.jpg"))


@dataclass(frozen=True)
class AuthorityIdentity:
    """The demo bank authority's Ed25519 key."""

    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> AuthorityIdentity:
        return cls(os.urandom(32))

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    @property
    def public_hex(self) -> str:
        return self.public_key.hex()


def build_snapshot(images: Sequence[Path], authority: AuthorityIdentity, *, version: int = 1,
                   work_dir: Path | None = None, valid_days: float = 30.0) -> bytes:
    """Hash ``images`` (the demo bank) and build a signed snapshot of them (the authority's job).

    Parameters come from the scanner's calibration for this bank size; only hashes that pass PDQ's
    quality gate (``scanner.hashers.spec.PDQ``) enter the bank, as PDQ recommends.
    """
    import time

    from scanner.authority import AuthorityKey
    from scanner.calibration import calibrate_padded
    from scanner.hashers.spec import PDQ
    from scanner.hashing import hash_file
    from scanner.snapshot.builder import build_snapshot as build

    hashes = []
    for path in images:
        hashed = hash_file(path, algo="pdq", mode="exact")
        if PDQ.passes_quality(hashed.quality):
            hashes.append(hashed.hash)
    params = calibrate_padded(max(1, len(hashes))).params
    now = int(time.time())
    return build(hashes, params=params, key=AuthorityKey(authority.seed), version=version, created=now,
                 expires=now + int(valid_days * 86400))


class RelayHandle:
    """An embedded relay server (``relay.serve.build_server``) on a loopback port."""

    def __init__(self, db: Path, *, port: int = 0, authorities: Sequence[bytes] = ()) -> None:
        self.db = db
        self.port = port
        self.authorities = frozenset(authorities)
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> RelayHandle:
        from relay.serve import build_server

        self.server = build_server(host="127.0.0.1", port=self.port, db=str(self.db),
                                   authorities=self.authorities)
        await self.server.start()
        self.port = self.server.port
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def restart(self) -> None:
        """Stop and start again on the same port and database (clients reconnect)."""
        await self.stop()
        for _ in range(50):
            try:
                await self.start()
                return
            except OSError:
                await asyncio.sleep(0.1)
        await self.start()


async def start_relay(db: Path, *, authorities: Sequence[bytes] = ()) -> RelayHandle:
    return await RelayHandle(db, authorities=authorities).start()


def make_profile(root: Path, name: str, *, relay: str, authority: AuthorityIdentity,
                 policy: PolicyName = "block") -> Core:
    """A new account without passphrase (tests and demo only)."""
    return Core.create(Profile(root / name), relay=relay, authority_pubkey=authority.public_hex,
                       passphrase=None, name=name, policy=policy)


__all__ += ["make_profile"]
