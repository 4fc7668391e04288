"""Scan before encrypt, on every path: CLI, core API, retries across a relay restart, forwards.

The TUI path is checked in ``tests/tui/test_pilot.py`` with the same guard. The guard fails the
test if any image is encrypted without a verdict issued by the scanner for its exact bytes.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

import scanner.verdict as sv
from client.crypto.attachments import encrypt_image
from client.demo.world import AuthorityIdentity
from client.errors import ScanVerdictRequired
from tests.client.corekit import Pair, background_relay, pair, run_cli, until
from tests.client.seam import SeamGuard

REPO = Path(__file__).resolve().parents[2]
COFFEE = REPO / "samples" / "coffee.jpg"
GRAVEL = REPO / "samples" / "gravel.jpg"


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> SeamGuard:
    return SeamGuard(monkeypatch)


def test_guard_catches_an_unscanned_encryption(guard: SeamGuard) -> None:
    data = COFFEE.read_bytes()
    with pytest.raises(ScanVerdictRequired):  # the seam itself refuses a verdict for other bytes
        encrypt_image(data, sv.issue_verdict(b"other bytes", "no_match"), content_type="image/jpeg")
    assert guard.sealed == []
    encrypt_image(data, sv.issue_verdict(data, "no_match"), content_type="image/jpeg")
    assert guard.sealed_count(data) == 1






def test_cli_path(tmp_path: Path, guard: SeamGuard) -> None:
    authority = AuthorityIdentity.generate()
    with background_relay(tmp_path, authority) as relay:
        ids = {}
        for who in ("a", "b"):
            status, out = run_cli("account", "create", "--profile", str(tmp_path / who), "--relay", relay.url,
                                  "--authority-pubkey", authority.public_hex, "--no-passphrase")
            assert status == 0 and out[0]["published"] is True, out
            ids[who] = out[0]["account_id"]
        assert run_cli("contact", "add", "--profile", str(tmp_path / "a"), ids["b"], "--name", "b")[0] == 0
        assert run_cli("config", "set", "--profile", str(tmp_path / "a"), "policy", "warn")[0] == 0
        assert run_cli("inbox", "--profile", str(tmp_path / "b"))[0] == 0  # b's keys are at the relay
        status, out = run_cli("send", "--profile", str(tmp_path / "a"), "--to", "b", "--image", str(COFFEE))
        assert status == 0 and out[0]["status"] == "blocked" and out[0]["needs_confirmation"] is True, out
        assert guard.sealed_count(COFFEE.read_bytes()) == 0
        status, out = run_cli("send", "--profile", str(tmp_path / "a"), "--to", "b", "--image", str(COFFEE),
                              "--yes")
        assert status == 0 and out[0]["status"] == "sent", out
        assert guard.sealed_count(COFFEE.read_bytes()) == 1
        status, out = run_cli("inbox", "--profile", str(tmp_path / "b"), "--wait", "5",
                              "--save", str(tmp_path / "saved"))
        assert status == 0 and out and out[0]["type"] == "image", out
        assert Path(out[0]["path"]).read_bytes() == COFFEE.read_bytes()


def test_offline_commands_release_the_profile_lock(tmp_path: Path) -> None:
    """Commands that never start the network free the profile at once, not when the garbage collector runs.

    (Regression: they closed only the store, so the next command on the profile raced the collector.)
    """
    from client.core.facade import lock_profile
    from client.locations import Profile

    authority = AuthorityIdentity.generate()
    gc.disable()
    try:
        with background_relay(tmp_path, authority) as relay:
            ids = {}
            for who in ("a", "b"):
                status, out = run_cli("account", "create", "--profile", str(tmp_path / who),
                                      "--relay", relay.url, "--authority-pubkey", authority.public_hex,
                                      "--no-passphrase")
                assert status == 0, out
                ids[who] = out[0]["account_id"]
            profile = str(tmp_path / "a")
            commands = (["account", "show"], ["contact", "add", ids["b"], "--name", "b"], ["contact", "list"])
            for command in commands:
                assert run_cli(*command[:2], "--profile", profile, *command[2:])[0] == 0, command
                lock_profile(Profile(tmp_path / "a")).close()  # free right away
    finally:
        gc.enable()


def test_retries_and_forwards(tmp_path: Path, guard: SeamGuard) -> None:
    async def body(p: Pair) -> None:
        bob = p.bob.account_id
        await p.alice.sender.send_text(bob, "hi")  # a session exists
        # a relay restart in the middle of an image send: the upload waits, nothing is re-encrypted
        await p.relay.stop()
        send = asyncio.create_task(p.alice.sender.send_image(bob, GRAVEL, confirmed=True))
        await asyncio.sleep(0.5)
        await p.relay.restart()
        out = await send
        assert out.status == "sent", out
        await until(lambda: any(m.kind == "image" and m.path
                                for m in p.bob.messages.conversation(p.alice.account_id)))
        assert guard.sealed_count(GRAVEL.read_bytes()) == 1
        # bob forwards the received image back: it is scanned again for this send
        got = next(m for m in p.bob.messages.conversation(p.alice.account_id) if m.kind == "image")
        issued_before = len(guard.outcomes(GRAVEL.read_bytes()))
        fwd = await p.bob.sender.forward_image(got.id, p.alice.account_id, confirmed=True)
        assert fwd.status == "sent", fwd
        assert len(guard.outcomes(GRAVEL.read_bytes())) == issued_before + 1
        assert guard.sealed_count(GRAVEL.read_bytes()) == 2

    async def main() -> None:
        p = await pair(tmp_path, "warn")
        try:
            await body(p)
        finally:
            await p.close()

    asyncio.run(main())
