"""Threshold reporting end to end with real processes: a relay and `authority serve` as subprocesses and a
client (a real :class:`client.core.Core`) under the ``report`` policy with ``report-threshold 3``.

After two matching sends the authority holds 2 of 3 vouchers and nothing readable (no report in the queue, no
report field anywhere in its store's files); after the third, all three reports are in the review queue."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from client.core import Core
from client.demo.world import AuthorityIdentity, make_profile
from client.locations import Profile
from tests.authority.procs import SAMPLES, pocketscan, read_log, relay_process, serve_process, until

pytestmark = pytest.mark.slow

BANKED = ("rocket.jpg", "astronaut.jpg", "camera.jpg")


def _authority(tmp: Path) -> tuple[AuthorityIdentity, Path, Path, Path]:
    """An authority key and a bank of the three banked samples (the CLI, as an operator would)."""
    key_file = tmp / "authority" / "authority.key"
    bank, store = tmp / "authority" / "bank.sqlite", tmp / "authority" / "store.sqlite"
    key_file.parent.mkdir()
    pocketscan("authority", "keygen", "--out", str(key_file))
    from scanner.authority import AuthorityKey

    pocketscan("bank", "import", "--bank", str(bank), "--source", "demo-list",
               *(str(SAMPLES / name) for name in BANKED))
    return AuthorityIdentity(AuthorityKey.load(key_file).seed), key_file, bank, store


def _lines(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in pocketscan(*args).stdout.splitlines() if line.strip()]


def test_three_matching_sends_open_the_account(tmp_path: Path) -> None:
    authority, key_file, bank, store = _authority(tmp_path)
    images = [SAMPLES / name for name in BANKED]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in images]

    with (
        relay_process(tmp_path, authority.public_hex) as relay_url,
        serve_process(tmp_path, key_file, bank, store, relay_url) as (serve, log),
    ):

        async def main() -> None:
            make_profile(tmp_path, "alice", relay=relay_url, authority=authority, policy="report").close()
            assert pocketscan("config", "set", "--profile", str(tmp_path / "alice"), "report-threshold",
                              "3").stdout.strip() == '{"report-threshold": 3}'
            alice = Core.open(Profile(tmp_path / "alice"))  # the setting as the CLI wrote it
            assert alice.settings.report_threshold == 3
            bob = make_profile(tmp_path, "bob", relay=relay_url, authority=authority, policy="block")
            try:
                await alice.contacts.add(bob.account_id, "bob")
                await alice.start()
                assert await alice.publish_now() and await bob.publish_now()
                await until(lambda: alice.snapshot.slot.current is not None,
                            what="the snapshot from authority serve")

                for path in images[:2]:
                    out = await alice.sender.send_image(bob.account_id, path)
                    assert out.status == "reported", out
                groups = await until(
                    lambda: [g for g in _lines("authority", "vouchers", "--store", str(store))
                             if g["vouchers"] >= 2],
                    what="2 vouchers at the authority")
                assert groups == [{"account": alice.account_id, "period": groups[0]["period"], "vouchers": 2,
                                   "threshold": 3, "opened": False}]
                assert _lines("authority", "queue", "--store", str(store), "--kind", "report") == []
                # no opened content at rest: no report field of either image in the authority's files
                for file in store.parent.iterdir():
                    data = file.read_bytes()
                    assert not any(d.encode() in data for d in digests), file.name
                    assert bob.account_id.encode() not in data, file.name

                assert (await alice.sender.send_image(bob.account_id, images[2])).status == "reported"
                def three_reports() -> list[dict[str, Any]]:
                    found = _lines("authority", "queue", "--store", str(store), "--kind", "report")
                    return found if len(found) >= 3 else []

                reports = await until(three_reports, what="the three reports in the queue")
                assert len(reports) == 3
                assert {r["reporter"] for r in reports} == {alice.account_id}
                assert {r["recipient"] for r in reports} == {bob.account_id}
                assert sorted(r["image_sha256"] for r in reports) == sorted(digests)
                assert all(r["votes"] >= 1 and r["snapshot_version"] is not None for r in reports)
                assert all(r["threshold"]["t"] == 3 for r in reports)
                [group] = _lines("authority", "vouchers", "--store", str(store))
                assert group["opened"] is True and group["vouchers"] == 3
            finally:
                await alice.stop()
                await bob.stop()

        asyncio.run(main())
        assert serve.poll() is None, read_log(log)


def test_synthetic_vouchers_make_counts_alike(tmp_path: Path) -> None:
    """With synthetic vouchers at rate 1 and the same volume, a matching and a non-matching account hold the
    same number of vouchers below t; the matching one opens at its third match, the decoys are dropped."""
    authority, key_file, bank, store = _authority(tmp_path)
    banked = [SAMPLES / name for name in BANKED]
    clean = [p for p in sorted(SAMPLES.glob("*.jpg")) if p.name not in BANKED][:4]

    with (
        relay_process(tmp_path, authority.public_hex) as relay_url,
        serve_process(tmp_path, key_file, bank, store, relay_url) as (serve, log),
    ):

        async def main() -> None:
            alice = make_profile(tmp_path, "alice", relay=relay_url, authority=authority, policy="report")
            carol = make_profile(tmp_path, "carol", relay=relay_url, authority=authority, policy="report")
            bob = make_profile(tmp_path, "bob", relay=relay_url, authority=authority, policy="block")
            for user in (alice, carol):
                user.settings = replace(user.settings, report_threshold=3, synthetic_vouchers=1.0)
            try:
                for user in (alice, carol):
                    await user.contacts.add(bob.account_id, "bob")
                    await user.start()
                    assert await user.publish_now()
                assert await bob.publish_now()
                await until(lambda: (alice.snapshot.slot.current is not None
                                     and carol.snapshot.slot.current is not None),
                            what="the snapshot from authority serve")
                # six images each: alice two matches and four clean ones, carol six clean ones
                for path in [banked[0], *clean, banked[1]]:
                    out = await alice.sender.send_image(bob.account_id, path)
                    assert out.status in ("reported", "sent")
                for path in [*clean, clean[0], clean[1]]:
                    assert (await carol.sender.send_image(bob.account_id, path)).status == "sent"

                def counted() -> list[dict[str, Any]]:
                    lines = _lines("authority", "vouchers", "--store", str(store))
                    return lines if sum(g["vouchers"] for g in lines) >= 12 else []

                groups = {g["account"]: g for g in await until(counted, what="12 vouchers at the authority")}
                assert groups[alice.account_id]["vouchers"] == groups[carol.account_id]["vouchers"] == 6
                assert not groups[alice.account_id]["opened"] and not groups[carol.account_id]["opened"]
                assert _lines("authority", "queue", "--store", str(store), "--kind", "report") == []

                assert (await alice.sender.send_image(bob.account_id, banked[2])).status == "reported"

                def three_reports() -> list[dict[str, Any]]:
                    found = _lines("authority", "queue", "--store", str(store), "--kind", "report")
                    return found if len(found) >= 3 else []

                reports = await until(three_reports, what="alice's three reports in the queue")
                assert {r["reporter"] for r in reports} == {alice.account_id} and len(reports) == 3
                groups = {g["account"]: g for g in _lines("authority", "vouchers", "--store", str(store))}
                assert groups[alice.account_id]["opened"] and not groups[carol.account_id]["opened"]
            finally:
                for user in (alice, carol, bob):
                    await user.stop()

        asyncio.run(main())
        assert serve.poll() is None, read_log(log)
