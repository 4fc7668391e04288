"""The client's "Protect a photo" and "Appeal a block" screens: pilot tests (consent before anything is sent,
the appeal after a block, the attach-image choice) and an SVG snapshot of what leaves the device."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.tui.app import PocketscanApp
from client.tui.screens.protect import AppealScreen, ProtectScreen
from tests.tui.fakes import BOB, REPO, FakeCore
from tests.tui.test_snapshots import StableFake

PHOTO = REPO / "samples" / "chelsea.jpg"


@dataclass
class _Sent:
    ref: str


class AuthorityFake(StableFake):
    """Records protection requests and appeals instead of sealing them."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.protected: list[tuple[Path, Any]] = []
        self.appeals: list[tuple[Path, str, bool]] = []

    async def protect_image(self, path: Path, *, hashes: Any = None) -> _Sent:
        self.protected.append((path, hashes))
        return _Sent("ab" * 16)

    async def appeal_image(self, path: Path, *, reason: str, attach_image: bool = False) -> _Sent:
        self.appeals.append((path, reason, attach_image))
        return _Sent("cd" * 16)


async def _idle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


def test_protect_shows_hashes_and_sends_only_on_consent() -> None:
    async def main() -> None:
        core = AuthorityFake()
        app = PocketscanApp(core=core, image_dir=REPO / "samples")
        async with app.run_test(size=(100, 34)) as pilot:
            await _idle(pilot)
            results: list[str | None] = []
            app.push_screen(ProtectScreen(core, PHOTO), results.append)
            await _idle(pilot)
            text = str(app.screen.query_one("#protect-text").render())
            from client.protect import image_hashes

            expected = image_hashes(PHOTO.read_bytes(), name=PHOTO.name)
            assert expected.pdq in text and "with 8 rotated and flipped variants" in text
            assert core.protected == []  # nothing leaves before the user presses "Send hashes"
            await pilot.press("escape")
            await _idle(pilot)
            assert results == [None] and core.protected == []
            app.push_screen(ProtectScreen(core, PHOTO), results.append)
            await _idle(pilot)
            await pilot.click("#send")
            await _idle(pilot)
            assert len(core.protected) == 1 and core.protected[0][1].pdq == expected.pdq
            assert results[-1] is not None and "abababab" in results[-1]

    asyncio.run(main())


def test_appeal_after_a_block_with_reason_and_explicit_attachment() -> None:
    async def main() -> None:
        core = AuthorityFake()
        app = PocketscanApp(core=core, image_dir=REPO / "samples")
        async with app.run_test(size=(100, 34)) as pilot:
            await _idle(pilot)
            chat = app.screen
            await pilot.press("ctrl+y")
            await _idle(pilot)
            assert "No blocked image" in str(chat.query_one("#banner").render())
            chat.open_conversation(BOB)
            await _idle(pilot)
            composer = chat.query_one("#composer")
            composer.value = f"/image {REPO / 'samples' / 'rocket.jpg'}"
            composer.focus()
            await pilot.press("enter")
            await _idle(pilot)
            assert chat.last_blocked == REPO / "samples" / "rocket.jpg"
            assert "ctrl+y: appeal" in str(chat.query_one("#banner").render())
            await pilot.press("ctrl+y")
            await _idle(pilot)
            assert isinstance(app.screen, AppealScreen)
            await pilot.press(*"my own rocket photo")
            await pilot.click("#appeal-attach")
            await pilot.click("#send")
            await _idle(pilot)
            assert core.appeals == [(REPO / "samples" / "rocket.jpg", "my own rocket photo", True)]
            assert "Appeal cdcdcdcd" in str(chat.query_one("#banner").render())

    asyncio.run(main())


pytest.importorskip("pytest_textual_snapshot")


def test_protect_screen_snapshot(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from client.protect import ImageHashes

    fixed = ImageHashes("5f" * 32, tuple(f"{i:02x}" * 32 for i in range(8)), 100, "e4" * 32)
    monkeypatch.setattr("client.tui.screens.protect._hash", lambda path: fixed)  # no onnxruntime dependence
    core = AuthorityFake()

    async def run(pilot: Any) -> None:
        await _idle(pilot)
        pilot.app.push_screen(ProtectScreen(core, PHOTO))
        await _idle(pilot)
        await pilot.pause()

    assert snap_compare(
        PocketscanApp(core=core, image_dir=REPO / "samples"), terminal_size=(100, 34), run_before=run
    )


__all__ = ["FakeCore"]
