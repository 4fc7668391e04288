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
from typing import TYPE_CHECKING, Any

import nacl.signing

from client.core import Core
from client.locations import Profile
from client.policy import PolicyName

if TYPE_CHECKING:
    from scanner.snapshot.workflow import SignedSnapshot

__all__ = [
    "DEMO_BANKED",
    "DEMO_BANK_FILE",
    "AuthorityIdentity",
    "RelayHandle",
    "build_snapshot",
    "make_demo_snapshot",
    "sample_images",
    "start_relay",
]

DEMO_BANKED: tuple[str, ...] = ("rocket.jpg", "astronaut.jpg", "camera.jpg")
"""Sample photos the demo bank holds (the other five are not banked)."""

DEMO_BANK_FILE = "demo-bank.sqlite"
"""The demo authority's hash bank, rebuilt by every :func:`make_demo_snapshot`."""


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


def make_demo_snapshot(images: Sequence[Path], authority: AuthorityIdentity, *, version: int = 1,
                       work_dir: Path | None = None, valid_days: float = 30.0) -> SignedSnapshot:
    """Hash ``images`` (the demo bank) and make a signed snapshot of them through the authority workflow
    (:mod:`scanner.snapshot.workflow`), as ``pocketscan snapshot build`` would.

    The hashes go into a fresh bank, :data:`DEMO_BANK_FILE` in ``work_dir`` (a temporary folder when None),
    which dedupes them and keeps those past PDQ's quality gate; the parameters come from the padded
    calibration for that bank's size.
    """
    import tempfile
    import time

    from scanner.authority import AuthorityKey
    from scanner.hashing import hash_file
    from scanner.snapshot.workflow import SnapshotPlan, make_snapshot, seed_bank

    hashed = [hash_file(path, algo="pdq", mode="exact") for path in images]
    now = int(time.time())
    with tempfile.TemporaryDirectory(prefix="pocketscan-demo-bank-") as tmp:
        bank = Path(tmp if work_dir is None else work_dir) / DEMO_BANK_FILE
        seed_bank(bank, "pdq", [h.hash for h in hashed], [h.quality for h in hashed], source="demo", now=now)
        plan = SnapshotPlan(version=version, valid_days=valid_days)
        return make_snapshot(bank, AuthorityKey(authority.seed), plan, now=now)


def build_snapshot(images: Sequence[Path], authority: AuthorityIdentity, *, version: int = 1,
                   work_dir: Path | None = None, valid_days: float = 30.0) -> bytes:
    """The bytes of :func:`make_demo_snapshot`."""
    made = make_demo_snapshot(images, authority, version=version, work_dir=work_dir, valid_days=valid_days)
    return made.data


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
