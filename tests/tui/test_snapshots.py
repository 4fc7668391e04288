"""SVG snapshot tests of the main screens at 80x24, driven with a fake core (no network).

Update after a deliberate UI change with ``python -m pytest tests/tui --snapshot-update`` and
review the SVGs in ``tests/tui/__snapshots__``.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pytest_textual_snapshot")

from client.tui.app import PocketscanApp
from tests.tui.fakes import REPO
from tests.tui.snapshotkit import StableFake, _loaded, _settle


class OnboardingLauncher:
    def needs_onboarding(self) -> bool:
        return True

    def needs_passphrase(self) -> bool:
        return False

    async def create(self, name: str, passphrase: str, relay: str = "", authority_pubkey: str = "") -> Any:
        return StableFake()

    async def unlock(self, passphrase: str) -> Any:
        return StableFake()


def _app(**kw: Any) -> PocketscanApp:
    return PocketscanApp(core=StableFake(**kw), image_dir=REPO / "samples")


def test_chat_screen(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_loaded)


def test_onboarding_screen(snap_compare: Any) -> None:
    assert snap_compare(PocketscanApp(launcher=OnboardingLauncher()), press=list("alice"), run_before=_settle)






def test_block_banner(snap_compare: Any) -> None:
    async def run(pilot: Any) -> None:
        await _loaded(pilot)
        pilot.app.screen.query_one("#composer").value = f"/image {REPO / 'samples' / 'rocket.jpg'}"
        await pilot.press("enter")
        await _loaded(pilot)

    assert snap_compare(_app(), run_before=run)


def test_warn_modal(snap_compare: Any) -> None:
    async def run(pilot: Any) -> None:
        await _loaded(pilot)
        core = pilot.app.core
        core.policy = "warn"
        pilot.app.screen.query_one("#composer").value = f"/image {REPO / 'samples' / 'rocket.jpg'}"
        await pilot.press("enter")
        await _loaded(pilot)

    assert snap_compare(_app(), run_before=run)


def test_safety_number_key_changed(snap_compare: Any) -> None:
    async def open_carol(pilot: Any) -> None:
        await _loaded(pilot)
        screen = pilot.app.screen
        screen.open_conversation("carolccccccccccccccccccccccccccc")
        await _loaded(pilot)
        await pilot.press("ctrl+g")
        await _loaded(pilot)

    assert snap_compare(_app(key_changed=True), run_before=open_carol)


def test_add_contact_dialog(snap_compare: Any) -> None:
    assert snap_compare(_app(), press=["ctrl+n", *"bobbb"], run_before=_loaded)


def test_file_picker(snap_compare: Any) -> None:
    assert snap_compare(_app(), press=["ctrl+o"], run_before=_loaded)
