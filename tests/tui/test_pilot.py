"""Textual pilot tests of the real app: real cores, a real relay on loopback, a real signed snapshot.

Each test drives the UI with keys and checks both what the UI shows and what the relay holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import cbor2
import pytest

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.demo.world import (
    DEMO_BANKED,
)
from client.locations import Profile
from client.store import Store
from client.tui.app import PocketscanApp
from client.tui.launch import ProfileLauncher
from client.tui.screens.chat import ChatScreen
from client.tui.screens.confirm import ConfirmSendScreen
from client.tui.screens.safety import SafetyNumberScreen
from client.tui.widgets.contacts import ContactList
from client.tui.widgets.conversation import MessageBubble, bubble_id
from tests.client.seam import SeamGuard
from tests.tui.pilotkit import banner, ready, relay_counts, type_line, until, world

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
BANKED = SAMPLES / DEMO_BANKED[0]
CLEAN = SAMPLES / "coffee.jpg"
















def test_onboarding_creates_a_protected_account(tmp_path: Path) -> None:
    async def main() -> None:
        async with world(tmp_path, contact=False) as w:
            profile = Profile(tmp_path / "carol")
            launcher = ProfileLauncher(profile, relay=w.relay.url, authority_pubkey=w.authority.public_hex)
            app = PocketscanApp(launcher=launcher, image_dir=SAMPLES)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                assert app.screen.__class__.__name__ == "OnboardingScreen"
                await pilot.press(*"carol", "enter", *"correct horse", "enter", *"correct horse", "enter")
                await until(lambda: isinstance(app.screen, ChatScreen), pilot, timeout=30)
                core = app.core
                assert core is not None
                await until(lambda: core.store.settings.get("prekeys_published", False), pilot)
                assert "carol" in str(app.screen.sub_title)
                await core.stop()
            assert Store.is_protected(profile.store_file)
            # the next start asks for the passphrase; a wrong one is refused and asked again
            app = PocketscanApp(launcher=launcher, image_dir=SAMPLES)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                assert app.screen.__class__.__name__ == "UnlockScreen"
                await pilot.press(*"wrong", "enter")
                def refused() -> bool:
                    if app.screen.__class__.__name__ != "UnlockScreen":
                        return False
                    return "wrong passphrase" in str(app.screen.query_one("#onboarding-error").render())

                await until(refused, pilot, timeout=30)
                await pilot.press(*"correct horse", "enter")
                await until(lambda: isinstance(app.screen, ChatScreen), pilot, timeout=30)
                assert app.core is not None and app.core.account_id
                await app.core.stop()

    asyncio.run(main())


def test_add_contact_send_text_and_allowed_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = SeamGuard(monkeypatch)

    async def main() -> None:
        async with world(tmp_path, contact=False) as w:
            app = PocketscanApp(core=w.alice, image_dir=SAMPLES)
            async with app.run_test(size=(80, 24)) as pilot:
                await ready(pilot, w)
                await pilot.press("ctrl+n")
                await pilot.pause()
                await pilot.press(*w.bob.invite_code(), "enter", "enter")  # the invite carries the name
                await until(lambda: [c.name for c in w.alice.contacts()] == ["bob"], pilot)
                await until(lambda: len(app.screen.query_one(ContactList).children) == 1, pilot)
                await type_line(pilot, "hello from the TUI")
                inbox = lambda: w.bob.messages(w.alice.account_id)  # noqa: E731
                await until(lambda: [m.text for m in inbox()] == ["hello from the TUI"], pilot)
                await until(lambda: w.alice.messages(w.bob.account_id)[-1].state == "delivered", pilot)
                last = w.alice.messages(w.bob.account_id)[-1].id
                await until(lambda: app.screen.query_one(f"#{bubble_id(last)}", MessageBubble).message.state
                            == "delivered", pilot)
                await type_line(pilot, f"/image {CLEAN.name}")
                await until(lambda: banner(pilot).startswith("SENT"), pilot)
                assert "no match" in banner(pilot)
                await until(lambda: any(m.kind == "image" and m.path for m in inbox()), pilot)
                got = next(m for m in inbox() if m.kind == "image")
                assert got.path is not None and w.bob.image_bytes(got.id) == CLEAN.read_bytes()
                assert guard.sealed_count(CLEAN.read_bytes()) == 1
                # forwarding a received image from the TUI scans it again before it is encrypted
                gravel = SAMPLES / "gravel.jpg"
                assert (await w.bob.send_image(w.alice.account_id, gravel)).status == "sent"
                await until(lambda: any(m.kind == "image" and m.direction == "in" and m.path
                                        for m in w.alice.messages(w.bob.account_id)), pilot)
                scans_before = len(guard.outcomes(gravel.read_bytes()))
                await type_line(pilot, "/forward bob")
                await until(lambda: guard.sealed_count(gravel.read_bytes()) == 2, pilot)
                await until(lambda: banner(pilot).startswith("SENT"), pilot)
                assert len(guard.outcomes(gravel.read_bytes())) == scans_before + 1

    asyncio.run(main())


@pytest.mark.parametrize("policy", ["off", "warn", "block", "report"])
def test_banked_image_under_each_policy(tmp_path: Path, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = SeamGuard(monkeypatch)

    async def main() -> None:
        async with world(tmp_path, policy) as w:
            app = PocketscanApp(core=w.alice, image_dir=SAMPLES)
            async with app.run_test(size=(80, 24)) as pilot:
                await ready(pilot, w)
                await type_line(pilot, "hi")  # a session, so later envelopes are the image's alone
                await until(lambda: len(w.bob.messages(w.alice.account_id)) == 1, pilot)
                before = relay_counts(w)
                await type_line(pilot, f"/image {BANKED.name}")
                data = BANKED.read_bytes()
                bob = w.bob.account_id
                if policy == "off":
                    await until(lambda: banner(pilot).startswith("SENT"), pilot)
                    assert "not scanned" in banner(pilot)
                    await until(lambda: any(m.kind == "image" for m in w.bob.messages(w.alice.account_id)),
                                pilot)
                    assert guard.sealed_count(data) == 1
                    return
                if policy == "warn":
                    await until(lambda: isinstance(app.screen, ConfirmSendScreen), pilot)
                    text = str(app.screen.query_one("#confirm-text").render())
                    assert "matches the hash bank" in text and "votes" in text
                    await pilot.press("escape")  # cancel
                    await until(lambda: banner(pilot).startswith("Cancelled"), pilot)
                    await asyncio.sleep(0.3)
                    assert relay_counts(w) == before and guard.sealed_count(data) == 0
                    return
                title = "BLOCKED" if policy == "block" else "BLOCKED + REPORTED"
                await until(lambda: banner(pilot).startswith(title), pilot)
                text = banner(pilot)
                assert "matches the hash bank" in text and "votes" in text and "snapshot v1" in text
                await asyncio.sleep(0.5)
                after = relay_counts(w)
                assert guard.sealed_count(data) == 0  # never encrypted
                assert after.get(bob, 0) == before.get(bob, 0) and after["blobs"] == before["blobs"]
                from client.report import authority_mailbox

                reports = after.get(authority_mailbox(w.authority.public_key), 0)
                assert reports == (1 if policy == "report" else 0)

    asyncio.run(main())


def test_key_change_warning(tmp_path: Path) -> None:
    """The relay hands out a bundle with someone else's key for bob: loud warning, nothing sent."""

    async def main() -> None:
        async with world(tmp_path) as w:
            mallory = IdentityKeyPair.generate()
            forged = PreKeyState.create(mallory, 0.0, one_time_count=1).bundle(mallory.public)

            async def forged_bundle(account: str) -> tuple[bytes, bytes | None]:
                return bytes(cbor2.dumps(forged.to_dict())), None

            w.alice.net.fetch_bundle = forged_bundle  # type: ignore[method-assign]
            app = PocketscanApp(core=w.alice, image_dir=SAMPLES)
            async with app.run_test(size=(80, 24)) as pilot:
                await ready(pilot, w)
                before = relay_counts(w)
                await type_line(pilot, "are you there?")
                await until(lambda: isinstance(app.screen, SafetyNumberScreen), pilot)
                warning = str(app.screen.query_one("#key-warning").render())
                assert "SAFETY NUMBER CHANGED" in warning
                await pilot.press("escape")
                await until(lambda: "safety number" in banner(pilot).lower(), pilot)
                assert [c.key_changed for c in w.alice.contacts()] == [True]
                assert relay_counts(w) == before
                assert w.bob.messages(w.alice.account_id) == []

    asyncio.run(main())
