"""The TUI's sensitive-content warning and blurred incoming images.

Pilot tests drive the real app over real cores and a real relay, with the stand-in ONNX classifier (a
red image is "sensitive"); SVG snapshots use the fake core (a sample photo stands in for a flagged one:
no sensitive image is in the repository).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from client.interfaces import MessageView, SendOutcome
from client.policy import Decision
from client.sensitive import SensitiveResult
from client.tui.app import PocketscanApp
from client.tui.screens.sensitive_confirm import SensitiveSendScreen
from client.tui.widgets.sensitive_image import BlurredImage, SensitiveImageBubble
from tests.client.seam import SeamGuard
from tests.tui.fakes import BOB, REPO, T0, FakeSender
from tests.tui.pilotkit import banner, ready, type_line, until, world
from tests.tui.snapshotkit import StableFake, _loaded

onnx = pytest.importorskip("onnx")

from scanner.classifiers.registry import clear_classifier_cache  # noqa: E402
from tests.scanner.standin_classifier import build_standin_detector, solid_png  # noqa: E402

FLAGGED = REPO / "samples" / "chelsea.jpg"  # stands in for a flagged photo in the snapshots
INCOMING = REPO / "samples" / "motorcycle.jpg"


def _shown(bubble: SensitiveImageBubble) -> tuple[str, bool]:
    """The bubble's text lines and whether its thumbnail is the blurred one."""
    parts = list(bubble.content.renderables)
    text = " ".join(str(p) for p in parts if isinstance(p, Text))
    return text, any(isinstance(p, BlurredImage) for p in parts)


def _enable(core: Any, setting: str, model: Path) -> None:
    core.settings = replace(core.settings, sensitive_content=setting, sensitive_model=str(model))


def test_send_warning_cancel_then_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = SeamGuard(monkeypatch)
    clear_classifier_cache()
    model = build_standin_detector(tmp_path / "model")
    red = solid_png(tmp_path / "pics" / "red.png", (255, 0, 0), (96, 64))

    async def main() -> None:
        async with world(tmp_path / "w", "off") as w:
            _enable(w.alice, "warn", model)
            app = PocketscanApp(core=w.alice, image_dir=red.parent)
            async with app.run_test(size=(80, 24)) as pilot:
                await ready(pilot, w)
                await type_line(pilot, "/image red.png")
                await until(lambda: isinstance(app.screen, SensitiveSendScreen), pilot)
                text = str(app.screen.query_one("#sensitive-text").render())
                assert "standin-detector" in text and "nothing is reported" in text
                await pilot.press("escape")  # Cancel
                await until(lambda: banner(pilot).startswith("Cancelled"), pilot)
                await asyncio.sleep(0.2)
                assert guard.sealed_count(red.read_bytes()) == 0  # never encrypted
                await type_line(pilot, "/image red.png")
                await until(lambda: isinstance(app.screen, SensitiveSendScreen), pilot)
                await pilot.press("y")  # send anyway
                await until(lambda: banner(pilot).startswith("SENT"), pilot)
                assert "sent after the sender confirmed" in banner(pilot)
                assert guard.sealed_count(red.read_bytes()) == 1
                await until(lambda: any(m.kind == "image"
                                        for m in w.bob.messages.conversation(w.alice.account_id)), pilot)

    asyncio.run(main())


def test_blurred_incoming_image_and_reveal(tmp_path: Path) -> None:
    clear_classifier_cache()
    model = build_standin_detector(tmp_path / "model")
    red = solid_png(tmp_path / "red.png", (255, 0, 0), (96, 64))
    blue = solid_png(tmp_path / "blue.png", (0, 0, 255), (96, 64))

    async def main() -> None:
        async with world(tmp_path / "w", "off") as w:
            _enable(w.bob, "blur", model)
            app = PocketscanApp(core=w.bob, image_dir=tmp_path)
            async with app.run_test(size=(80, 24)) as pilot:
                await w.alice.start()
                await until(lambda: w.bob.net.connected and w.alice.net.connected, pilot)
                await w.alice.sender.send_text(w.bob.account_id, "hi")
                for image in (blue, red, red):
                    out = await w.alice.sender.send_image(w.bob.account_id, image, confirmed=True)
                    assert out.status == "sent", out
                await until(lambda: len(app.screen.query(".bubble")) == 4, pilot)
                blurred = list(app.screen.query(SensitiveImageBubble))
                assert len(blurred) == 2 and not any(b.revealed for b in blurred)  # the blue one is plain
                assert all(_shown(b)[1] and "May be sensitive" in _shown(b)[0] for b in blurred)
                await pilot.press("ctrl+e")  # the newest blurred image
                await until(lambda: blurred[1].revealed, pilot)
                assert not blurred[0].revealed and _shown(blurred[1]) == (_shown(blurred[1])[0], False)
                assert "May be sensitive" not in _shown(blurred[1])[0]
                blurred[0].focus()
                await pilot.press("enter")
                await until(lambda: blurred[0].revealed, pilot)
                await pilot.press("ctrl+e")
                await until(lambda: "No blurred image" in banner(pilot), pilot)
                # the stored files are the bytes that were sent
                digest = hashlib.sha256(red.read_bytes()).digest()
                for bubble in blurred:
                    assert bubble.message.path
                    stored = w.bob.messages.image_bytes(bubble.message.id)  # sealed at rest, opened in memory
                    assert stored is not None and hashlib.sha256(stored).digest() == digest

    asyncio.run(main())


class SensitiveSender(FakeSender):
    """Sends as the fake does, but ``chelsea.jpg`` is flagged by the classifier (confirm first)."""

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome:
        if path.name != FLAGGED.name or confirmed:
            return await super().send_image(peer, path, confirmed=confirmed)
        rating = SensitiveResult("sensitive", 0.87, "nudenet-320n")
        decision = Decision("confirm", self.core.policy, "no_match",
                            f"no match in snapshot v3; {rating.describe()}; send anyway?")
        return SendOutcome("confirm", None, None, decision, sensitive=rating)


class SensitiveFake(StableFake):
    """The fake core with one received image rated sensitive and ``chelsea.jpg`` flagged when sent."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = "warn"
        self._messages[BOB].append(MessageView("m9", BOB, "in", "image", path=str(INCOMING), sent_at=T0 + 150,
                                               state="received", label="photo 512x512", sensitive=True))
        self.sender = SensitiveSender(self)


def _app() -> PocketscanApp:
    return PocketscanApp(core=SensitiveFake(), image_dir=REPO / "samples")


def test_blurred_incoming_image_snapshot(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_loaded)


def test_revealed_incoming_image_snapshot(snap_compare: Any) -> None:
    async def run(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("ctrl+e")
        await _loaded(pilot)

    assert snap_compare(_app(), run_before=run)


def test_sensitive_send_warning_snapshot(snap_compare: Any) -> None:
    async def run(pilot: Any) -> None:
        await _loaded(pilot)
        pilot.app.screen.query_one("#composer").value = f"/image {FLAGGED}"
        await pilot.press("enter")
        await _loaded(pilot)

    assert snap_compare(_app(), run_before=run)
