"""Issue 11's findings about a hostile relay: a websockets server speaking the real frame protocol
(``tests/adversarial/hostile_relay.py``) against an unmodified client core.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.core import Core
from client.demo.world import AuthorityIdentity, build_snapshot, make_profile, sample_images
from client.locations import Profile
from client.net import NetError
from tests.adversarial.hostile import until
from tests.adversarial.hostile_relay import FakeBlob, HostileRelay


def run(coro: object, timeout: float = 120.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def test_same_version_snapshot_with_another_fingerprint_is_refused(tmp_path: Path) -> None:
    """The floor kept the version only: a different file with the same version was swapped in."""
    authority = AuthorityIdentity.generate()
    images = sample_images()
    genuine = build_snapshot(images[:3], authority, version=7)
    swapped = build_snapshot(images[3:], authority, version=7)  # signed, same version, other bank

    async def body() -> None:
        relay = await HostileRelay().start()
        try:
            core = make_profile(tmp_path, "victim", relay=relay.url, authority=authority)
            relay.serve_snapshot(7, genuine)
            await core.start()
            await until(lambda: core.snapshot.status().version == 7)
            first = core.snapshot.status().fingerprint
            await core.stop()
            # the snapshot file is lost (or damaged); the relay now serves the other file as version 7
            (tmp_path / "victim" / "snapshot.bin").unlink()
            blob = relay.serve_snapshot(7, swapped)
            core = Core.open(Profile(tmp_path / "victim"))
            await core.start()
            await until(lambda: relay.chunk_requests(blob) >= 1)
            await asyncio.sleep(1.0)  # time to verify and (wrongly) install it
            status = core.snapshot.status()
            assert status.fingerprint in (None, first), "a same-version snapshot swap was accepted"
            await core.stop()
        finally:
            await relay.stop()

    run(body())


def test_oversized_snapshot_announcement_is_not_downloaded(tmp_path: Path) -> None:
    """Snapshot downloads had no size cap: a relay could announce (and stream) 600 MB."""
    authority = AuthorityIdentity.generate()

    async def body() -> None:
        relay = await HostileRelay().start()
        try:
            core = make_profile(tmp_path, "victim", relay=relay.url, authority=authority)
            blob = relay.serve_snapshot(9, b"", declared_size=600 * 1024 * 1024)
            await core.start()
            await until(lambda: any(t == "snapshot.get" for t, _ in relay.requests))
            await asyncio.sleep(1.0)
            assert relay.chunk_requests(blob) == 0, "the client started downloading a 600 MB snapshot"
            assert core.snapshot.status().version is None
            await core.stop()
        finally:
            await relay.stop()

    run(body())


def test_oversized_blob_download_stops_at_the_cap(tmp_path: Path) -> None:
    """Blob downloads had no size cap: a relay answering ``blob.get`` with 1 GiB was followed."""
    authority = AuthorityIdentity.generate()

    async def body() -> None:
        relay = await HostileRelay(max_chunks=40).start()
        try:
            core = make_profile(tmp_path, "victim", relay=relay.url, authority=authority)
            relay.blobs["huge"] = FakeBlob(b"", announced=1024**3)
            await core.start()
            assert await core.wait_connected(10)
            with pytest.raises((NetError, TimeoutError)):
                await asyncio.wait_for(core.net.download_blob("huge"), 20)
            assert relay.chunk_requests("huge") <= 1, "the client kept downloading past its cap"
            await core.stop()
        finally:
            await relay.stop()

    run(body())
