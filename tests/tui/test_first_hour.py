"""The TUI's first-hour paper cuts, each driven with Textual's pilot (a fake core unless a test names a real
part)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from client.interfaces import ChatCore, SendOutcome
from client.tui.app import PocketscanApp
from client.tui.screens.add_contact import AddContactScreen
from client.tui.screens.chat import ChatScreen
from client.tui.screens.confirm import ConfirmSendScreen
from client.tui.screens.file_picker import FilePickerScreen
from client.tui.screens.onboarding import OnboardingScreen
from client.tui.screens.unlock import UnlockScreen
from client.tui.widgets.not_sent import NotSentItem
from tests.tui.fakes import ALICE, BOB, CAROL, REPO, FakeCore, FakeSender

SAMPLES = REPO / "samples"


async def settle(pilot: Any) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


async def type_line(pilot: Any, text: str) -> None:
    composer = pilot.app.screen.query_one("#composer", Input)
    composer.value = text
    composer.focus()
    await pilot.press("enter")
    await settle(pilot)


def banner(pilot: Any) -> str:
    return str(pilot.app.screen.query_one("#banner").render())


def run(app: PocketscanApp, body: Any, size: tuple[int, int] = (100, 30)) -> None:
    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await body(pilot)

    asyncio.run(asyncio.wait_for(go(), 60))


class Launcher:
    """A launcher as `pocketscan chat --relay URL [--authority-pubkey HEX]` builds it, for a new profile."""

    def __init__(self, relay: str = "", authority_pubkey: str = "") -> None:
        self.relay, self.authority_pubkey = relay, authority_pubkey

    def needs_onboarding(self) -> bool:
        return True

    def needs_passphrase(self) -> bool:
        return False

    def missing_server(self) -> bool:
        return not (self.relay and self.authority_pubkey)

    async def create(self, name: str, passphrase: str, relay: str = "",
                     authority_pubkey: str = "") -> ChatCore:
        return FakeCore()

    async def unlock(self, passphrase: str) -> ChatCore:
        return FakeCore()


def test_onboarding_prefills_the_command_line_relay() -> None:
    url = "ws://127.0.0.1:26010"

    async def body(pilot: Any) -> None:
        assert isinstance(pilot.app.screen, OnboardingScreen)
        relay = pilot.app.screen.query_one("#relay", Input)
        assert relay.value == url  # a value, not a grey placeholder
        assert pilot.app.screen.query_one("#authority", Input).value == ""

    run(PocketscanApp(launcher=Launcher(relay=url)), body)


def test_blocked_image_stays_in_the_conversation_as_not_sent() -> None:
    async def body(pilot: Any) -> None:
        await type_line(pilot, f"/image {SAMPLES / 'rocket.jpg'}")
        assert "5 votes (2 needed)" in banner(pilot) and "/2" not in banner(pilot)
        await type_line(pilot, f"/image {SAMPLES / 'coffee.jpg'}")  # the next image replaces the banner...
        items = list(pilot.app.screen.query(NotSentItem))
        assert len(items) == 1  # ...but not the trace of the blocked one
        shown = items[0].plain_text
        assert "not sent: rocket.jpg" in shown and "5 votes (2 needed)" in shown and "snapshot v3" in shown
        screen = pilot.app.screen
        screen.open_conversation(CAROL)
        await settle(pilot)
        assert not list(screen.query(NotSentItem))
        screen.open_conversation(BOB)
        await settle(pilot)
        assert [i.item.name for i in screen.query(NotSentItem)] == ["rocket.jpg"]

    run(PocketscanApp(core=FakeCore(), image_dir=SAMPLES), body)


def test_cancelled_warning_is_a_not_sent_item_too() -> None:
    core = FakeCore()
    core.policy = "warn"

    async def body(pilot: Any) -> None:
        await type_line(pilot, f"/image {SAMPLES / 'rocket.jpg'}")
        assert isinstance(pilot.app.screen, ConfirmSendScreen)
        await pilot.press("escape")
        await settle(pilot)
        items = list(pilot.app.screen.query(NotSentItem))
        assert len(items) == 1 and "send anyway" not in items[0].plain_text
        assert "you chose not to send it" in items[0].plain_text

    run(PocketscanApp(core=core, image_dir=SAMPLES), body)


def test_picker_goes_to_parent_home_and_typed_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    target = home / "photos" / "holiday.jpg"
    target.write_bytes((SAMPLES / "coffee.jpg").read_bytes())
    monkeypatch.setenv("HOME", str(home))
    core = FakeCore()

    async def body(pilot: Any) -> None:
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)
        picker = pilot.app.screen
        assert isinstance(picker, FilePickerScreen) and picker.root == SAMPLES.resolve()
        await pilot.press("backspace")
        await pilot.pause(0.2)
        assert picker.root == REPO.resolve()
        await pilot.press("tilde")
        await pilot.pause(0.2)
        assert picker.root == home.resolve()
        await pilot.press("slash")
        field = picker.query_one("#picker-path", Input)
        assert pilot.app.focused is field
        field.value = "~/nowhere"
        await pilot.press("enter")
        assert isinstance(pilot.app.screen, FilePickerScreen)
        assert "no such file or folder" in str(picker.query_one("#picker-title").render())
        field.value = "~/photos/holiday.jpg"
        await pilot.press("enter")
        await pilot.pause(0.2)
        await settle(pilot)
        assert isinstance(pilot.app.screen, ChatScreen)
        assert core.sent[-1] == (BOB, str(target.resolve()))

    run(PocketscanApp(core=core, image_dir=SAMPLES), body)


def test_unknown_slash_command_says_so_then_helps() -> None:
    async def body(pilot: Any) -> None:
        await type_line(pilot, "/bogus")
        text = banner(pilot)
        assert text.startswith("Unknown command /bogus.") and "Commands:" in text
        await type_line(pilot, "/image")
        assert banner(pilot).startswith("/image needs an argument.")
        await type_line(pilot, "/help")
        assert banner(pilot).startswith("Commands:")
        await type_line(pilot, "/[b]x")  # user text is not markup
        assert "Unknown command /[b]x." in banner(pilot)

    run(PocketscanApp(core=FakeCore(), image_dir=SAMPLES), body)


class Nameless(FakeCore):
    @property
    def display_name(self) -> str:
        return ALICE[:8]  # what Core.display_name gives for a profile without a name


def test_title_shows_the_id_once_for_a_profile_without_a_name() -> None:
    async def body(pilot: Any) -> None:
        assert pilot.app.screen.sub_title == f"{ALICE[:8]}… · connected"

    run(PocketscanApp(core=Nameless(), image_dir=SAMPLES), body)

    async def named(pilot: Any) -> None:
        assert pilot.app.screen.sub_title == f"alice · {ALICE[:8]}… · connected"

    run(PocketscanApp(core=FakeCore(), image_dir=SAMPLES), named)


def test_locked_profile_without_passphrase_shows_no_unlock_prompt(tmp_path: Path) -> None:
    from client.core import Core
    from client.locations import Profile
    from client.tui.launch import ProfileLauncher

    profile = Profile(tmp_path / "p")
    holder = Core.create(profile, relay="ws://127.0.0.1:9", authority_pubkey="ab" * 32, passphrase=None)
    try:  # the profile is open (locked) in "another process": this core holds the lock
        async def body(pilot: Any) -> None:
            await settle(pilot)
            screen = pilot.app.screen
            assert isinstance(screen, UnlockScreen) and not screen.ask_passphrase
            assert not list(screen.query(Input))
            assert "another pocketscan process" in str(screen.query_one("#onboarding-error").render())

        run(PocketscanApp(launcher=ProfileLauncher(profile)), body)
    finally:
        holder.close()


def test_add_contact_placeholder_shows_the_real_id_format() -> None:
    async def body(pilot: Any) -> None:
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert isinstance(pilot.app.screen, AddContactScreen)
        hint = pilot.app.screen.query_one("#account", Input).placeholder
        assert "ps1" not in hint and "32 characters a-z, 2-7" in hint and "psinv:" in hint
        assert len(ALICE) == 32

    run(PocketscanApp(core=FakeCore(), image_dir=SAMPLES), body)


def test_demo_check_prints_no_path_it_deletes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from client.cli.main import main

    assert main(["demo", "--check"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["relay"].startswith("ws://127.0.0.1:") and "profile" not in summary
    assert "/pocketscan-demo-" not in out + err
    assert main(["demo", "--check", "--dir", str(tmp_path / "kept")]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert Path(kept["profile"]).is_dir()  # with --dir the folder stays, so its path is printed


class OfflineSender(FakeSender):
    """Texts to a contact without a session are queued (the relay is unreachable)."""

    async def send_text(self, peer: str, text: str) -> SendOutcome:
        out = await super().send_text(peer, text)
        assert out.message is not None
        from dataclasses import replace

        return SendOutcome("queued", replace(out.message, state="sending"))


class Offline(FakeCore):
    """A core whose relay is unreachable: texts to a contact without a session are queued."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = OfflineSender(self)

    @property
    def connected(self) -> bool:
        return False


def test_a_queued_text_says_it_waits_for_the_relay() -> None:
    async def body(pilot: Any) -> None:
        await type_line(pilot, "see you [b]soon")
        text = banner(pilot)
        assert text.startswith("QUEUED") and "sent once connected" in text
        assert pilot.app.screen.sub_title.endswith("offline")

    run(PocketscanApp(core=Offline(), image_dir=SAMPLES), body)


def test_file_names_are_not_markup(tmp_path: Path) -> None:
    odd = tmp_path / "x[b]y.jpg"
    odd.write_bytes((SAMPLES / "rocket.jpg").read_bytes())

    async def body(pilot: Any) -> None:
        await type_line(pilot, f"/image {odd}")
        assert "x[b]y.jpg" in banner(pilot)

    run(PocketscanApp(core=FakeCore(banked=("x[b]y.jpg",)), image_dir=SAMPLES), body)
