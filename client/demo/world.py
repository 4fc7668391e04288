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
    root = Path(__file__).resolve().parents[2] / "samples"
    return sorted(p for p in root.glob("*.jpg"))


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
                   work_dir: Path) -> bytes:
    """Hash ``images`` into a bank and build a signed snapshot of it (the authority's job)."""
    from scanner.bank import Bank
    from scanner.snapshot import build_snapshot as build

    from scanner.authority import AuthorityKey

    bank_path = work_dir / "bank.sqlite"
    bank_path.unlink(missing_ok=True)
    with Bank.open(bank_path) as bank:
        bank.import_images([str(p) for p in images], source="demo")
        data: bytes = build(bank, AuthorityKey(authority.seed), version=version)
    return data


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
