"""Issue 11's findings about hostile peers, one test each: a real attacker account, a real relay on
loopback, an unmodified victim observed from outside (its messages, its profile folder, its CLI, its TUI).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from client.crypto.attachments import AttachmentPointer
from client.locations import Profile
from client.store import MessageRecord, Store
from client.tui.app import PocketscanApp
from client.tui.widgets.conversation import MessageBubble
from tests.adversarial.hostile import COFFEE, REPO, arena, content, files_under, shown, until

FAILED = "could not be shown"


def run(coro: object, timeout: float = 120.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def _outside_files(root: Path, profile: Path) -> set[Path]:
    return {p for p in files_under(root) if profile not in p.parents and p.name != "relay.sqlite"
            and not p.name.startswith("relay.sqlite")}


def test_path_traversal_message_id_writes_nothing_outside_media(tmp_path: Path) -> None:
    """``../snapshot`` and ``../../escaped`` as message ids must not become file names."""
    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            others = {p for p in files_under(tmp_path) if "victim" not in p.parts}
            ptr = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/x-bin")
            await a.attacker.send_content(victim, content("image", "../snapshot", att=ptr))
            ptr2 = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg")
            await a.attacker.send_content(victim, content("image", "../../escaped", att=ptr2))
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id))
            profile = a.victim.profile.root
            assert not (profile / "snapshot.bin").exists(), "a peer's id overwrote the snapshot file"
            assert not (tmp_path / "escaped.jpg").exists(), "a peer's id wrote outside the profile"
            new = {p for p in files_under(tmp_path) if "victim" not in p.parts} - others
            assert not [p for p in new if not p.name.startswith("relay.sqlite")]
            texts = shown(a.victim, a.attacker.account_id)
            assert len(texts) == 2 and all(FAILED in t for t in texts), texts

    run(body())


def test_absolute_path_message_id_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()

    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            ptr = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg")
            await a.attacker.send_content(victim, content("image", str(target / "pwned"), att=ptr))
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id))
            assert list(target.iterdir()) == [], "an absolute message id became a file path"
            assert any(FAILED in t for t in shown(a.victim, a.attacker.account_id))

    run(body())


def test_message_id_with_a_space_does_not_crash_the_tui(tmp_path: Path) -> None:
    """``"a b"`` was used as a widget id: the conversation crashed on it."""
    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            await a.attacker.send_content(victim, content("text", "a b", text="hello"))
            await a.attacker.send_content(victim, content("text", "ok-id", text="second"))
            await until(lambda: len(shown(a.victim, a.attacker.account_id)) == 2)
            app = PocketscanApp(core=a.victim, image_dir=REPO / "samples")
            async with app.run_test(size=(100, 30)) as pilot:
                for _ in range(100):
                    await pilot.pause(0.05)
                    if app.screen.__class__.__name__ == "ChatScreen":
                        break
                app.screen.open_conversation(a.attacker.account_id)  # type: ignore[attr-defined]
                for _ in range(100):
                    await pilot.pause(0.05)
                    if len(app.screen.query(MessageBubble)) == 2:
                        break
                bubbles = list(app.screen.query(MessageBubble))
                assert len(bubbles) == 2
                assert all(" " not in (b.id or "") for b in bubbles)
                assert app.is_running

    run(body())


def test_malformed_blob_id_costs_one_envelope_and_no_reconnects(tmp_path: Path) -> None:
    """A ``"z" * 65`` blob id made the relay drop the victim on ``blob.get``, again and again."""
    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            ptr = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg")
            ptr["blob_id"] = "z" * 65
            await a.attacker.send_content(victim, content("image", att=ptr))
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id), timeout=20)
            assert a.victim.net.connects == 1, "the victim's connection was dropped"
            assert [FAILED in t for t in shown(a.victim, a.attacker.account_id)] == [True]

    run(body())


def test_256_poison_envelopes_do_not_block_the_push_window(tmp_path: Path) -> None:
    """Envelopes whose processing raised were never acknowledged: 256 of them filled the window."""
    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            ptr = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg")
            ptr["blob_id"] = "missing" + os.urandom(8).hex()
            ptr["width"] = ptr["height"] = 10**5000  # CBOR bignums
            for _ in range(256):
                await a.attacker.send_content(victim, content("image", att=ptr))
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id), timeout=60)
            texts = shown(a.victim, a.attacker.account_id)
            assert len(texts) == 256 and all(FAILED in t for t in texts)

    run(body(), timeout=180)


def test_stored_bignum_width_does_not_break_messages_or_inbox(tmp_path: Path) -> None:
    """A row stored by an older version with a 10**5000 width made ``messages()`` and ``inbox`` raise."""
    peer = "b" * 32

    async def body() -> None:
        async with arena(tmp_path) as a:
            store = a.victim.store
            ptr = AttachmentPointer("a" * 32, bytes(64), bytes(32), 100, "image/jpeg", 10**5000, 7)
            store.contacts.add(peer, now=0.0)
            store.messages.add(MessageRecord("hostile", peer, "in", "image", 1.0, "received", attachment=ptr,
                                            local_path="/etc/passwd"))
            store.settings.set("cli_inbox", ["hostile"])
            views = a.victim.messages(peer)
            assert len(views) == 1 and views[0].path is None
            await a.victim.stop()

    run(body())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "client.cli.main", "inbox", "--profile",
                           str(tmp_path / "victim")], capture_output=True, text=True, timeout=120, env=env,
                          cwd=REPO)
    assert proc.returncode in (0, 2), proc.stderr  # 2: the relay is gone; what is stored is still printed
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["hostile"]


def test_pointer_size_mismatch_is_refused_and_costs_one_envelope(tmp_path: Path) -> None:
    """``pointer.size`` was not checked before downloading: a 3 MiB blob for a 1,000-byte image."""
    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id
            ptr = await a.attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg")
            blob = os.urandom(3 * 1024 * 1024)
            ptr["blob_id"] = await a.attacker.upload_raw(blob)
            ptr["digest"] = hashlib.sha256(blob).digest()
            ptr["size"] = 1000
            await a.attacker.send_content(victim, content("image", att=ptr))
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id), timeout=30)
            texts = shown(a.victim, a.attacker.account_id)
            assert len(texts) == 1 and FAILED in texts[0] and "size mismatch" in texts[0], texts

    run(body())


def _windows(data: bytes, size: int = 64) -> list[bytes]:
    mid = len(data) // 2
    return [data[mid:mid + size], data[len(data) // 3:len(data) // 3 + size]]


def test_profile_holds_no_image_plaintext(tmp_path: Path) -> None:
    """Done when: a search of every file under both profiles finds neither the JPEG's bytes nor its pixels."""
    jpeg = COFFEE.read_bytes()
    with Image.open(io.BytesIO(jpeg)) as im:
        rgb = im.convert("RGB")
        pixels = rgb.tobytes()
        png = io.BytesIO()
        rgb.save(png, "PNG")
    needles = _windows(jpeg) + _windows(pixels) + _windows(png.getvalue())

    async def body() -> None:
        async with arena(tmp_path) as a:
            out = await a.friend.send_image(a.victim.account_id, COFFEE, confirmed=True)
            assert out.status == "sent", out
            await until(lambda: any(m.kind == "image" and m.path
                                    for m in a.victim.messages(a.friend.account_id)), timeout=30)

    run(body())
    for who in ("victim", "friend"):
        files = files_under(tmp_path / who)
        assert any(p.parent.name == "media" for p in files), f"{who} kept no image at all"
        for path in files:
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"image plaintext found in {path}"


def test_tampered_settings_file_is_refused(tmp_path: Path) -> None:
    """``settings.json`` (the pinned authority key, the policy) was unauthenticated plain text."""
    async def body() -> None:
        async with arena(tmp_path):
            pass

    run(body())
    settings = tmp_path / "victim" / "settings.json"
    raw = json.loads(settings.read_text())
    raw["authority_pubkey"] = "ab" * 32  # the attacker's authority
    raw["policy"] = "off"
    settings.write_text(json.dumps(raw))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "client.cli.main", "account", "show", "--profile",
                           str(tmp_path / "victim")], capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO)
    assert proc.returncode == 2, proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "settings" in proc.stderr, proc.stderr
    from client.core import Core

    with pytest.raises(Exception, match="changed outside pocketscan"):
        Core.open(Profile(tmp_path / "victim"))
    raw.pop("mac", None)  # stripping the MAC is no way around it
    settings.write_text(json.dumps(raw))
    with pytest.raises(Exception, match="changed outside pocketscan"):
        Core.open(Profile(tmp_path / "victim"))
    assert Store.exists(tmp_path / "victim" / "store.sqlite")


def test_a_full_disk_costs_one_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever fails while handling an envelope, a full disk included, is recorded and acknowledged."""
    import errno

    async def body() -> None:
        async with arena(tmp_path) as a:
            victim = a.victim.account_id

            def full(data: bytes) -> str:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(a.victim.media, "put", full)  # the disk fills up while an image arrives
            out = await a.friend.send_image(victim, COFFEE, confirmed=True)
            assert out.status == "sent", out
            await a.friend.send_text(victim, "genuine")
            await until(lambda: "genuine" in shown(a.victim, a.friend.account_id), timeout=30)
            texts = shown(a.victim, a.friend.account_id)
            assert texts[0] == "a message from friend could not be shown: it could not be saved " \
                               "(No space left on device)", texts
            assert a.victim.net.connects == 1

    run(body())
