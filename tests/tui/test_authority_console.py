"""The reviewers' console (`pocketscan authority console`): pilot tests over a real store and SVG
snapshots at 100x30. Update snapshots with ``python -m pytest tests/tui --snapshot-update``, then review
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client.authority.console import ReviewConsole
from client.authority.store import AuthorityStore

SENDERS = ("aaaabbbbccccddddeeeeffffgggghhhh", "mmmmnnnnoooopppp2222333344445555")
PDQ = "5a" * 32


def _store(path: Path) -> AuthorityStore:
    """A store with one report, one submission and one appeal at fixed times and ids."""
    clock = iter(range(1_780_000_000, 1_780_000_100))
    store = AuthorityStore(path, create=True, clock=lambda: float(next(clock)))
    store.add_item(
        kind="report",
        sender=SENDERS[0],
        sender_key=None,
        relay_mid="m1",
        ref="01" * 16,
        item_id="r-000000000001",
        received_at=1_780_000_000.0,
        body={
            "reporter": SENDERS[0],
            "recipient": SENDERS[1],
            "votes": 5,
            "snapshot_version": 42,
            "quality": 88,
            "hashes": {"pdq": PDQ},
            "image_sha256": "00" * 32,
        },
    )
    store.add_item(
        kind="submission",
        sender=SENDERS[1],
        sender_key=None,
        relay_mid="m2",
        ref="02" * 16,
        item_id="s-000000000002",
        received_at=1_780_000_060.0,
        body={
            "submission_id": "02" * 16,
            "quality": 100,
            "hashes": {"pdq": PDQ, "pdq_dihedral": [PDQ] * 8, "onnx": "11" * 32},
        },
    )
    store.add_item(
        kind="appeal",
        sender=SENDERS[1],
        sender_key=None,
        relay_mid="m3",
        ref="03" * 16,
        item_id="a-000000000003",
        received_at=1_780_000_120.0,
        body={
            "appeal_id": "03" * 16,
            "reason": "[b]my own cat[/b], not abuse",
            "snapshot_version": 42,
            "votes": 4,
            "blocked": True,
            "hashes": {"pdq": PDQ},
        },
    )
    return store


def _app(tmp_path: Path) -> ReviewConsole:
    return ReviewConsole(_store(tmp_path / "store.sqlite"), reviewer="ana", refresh_every=0)


async def _settle(pilot: Any) -> None:
    for widget in pilot.app.screen.query("Input"):
        widget.cursor_blink = False
    await pilot.pause()


def test_console_shows_queue_and_detail(tmp_path: Path) -> None:
    async def main() -> None:
        app = _app(tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await _settle(pilot)
            assert app.query_one("#queue").row_count == 3
            detail = str(app.query_one("#detail").render())
            assert "report r-000000000001" in detail and "votes     5" in detail and "snapshot  42" in detail
            assert SENDERS[0] in detail and PDQ in detail
            await pilot.press("down", "down")
            detail = str(app.query_one("#detail").render())
            assert "[b]my own cat[/b]" in detail  # sender text is escaped, not markup

    import asyncio

    asyncio.run(main())


def test_console_accept_with_note_and_audit_log(tmp_path: Path) -> None:
    async def main() -> None:
        app = _app(tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await _settle(pilot)
            await pilot.press("down")  # the submission
            await pilot.press("n")
            await pilot.press(*"verified owner")
            await pilot.press("enter")
            await pilot.press("a")
            await pilot.pause()
            decision = app.store.decision_of("s-000000000002")
            assert decision is not None and decision.decision == "accepted"
            assert decision.note == "verified owner" and decision.reviewer == "ana"
            assert [i.id for i in app.store.items()] == ["r-000000000001", "a-000000000003"]
            assert app.query_one("#queue").row_count == 2
            await pilot.press("r")  # rejects the highlighted report
            await pilot.pause()
            assert app.store.decision_of("r-000000000001").decision == "rejected"  # type: ignore[union-attr]
            await pilot.press("l")
            await pilot.pause()
            audit = app.query_one("#audit")
            assert audit.row_count == 5 and not audit.has_class("hidden")
            await pilot.press("w")  # all items, decided ones too
            await pilot.pause()
            assert app.query_one("#queue").row_count == 3

    import asyncio

    asyncio.run(main())


pytest.importorskip("pytest_textual_snapshot")


def test_console_snapshot_queue(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(100, 30), run_before=_settle)


def test_console_snapshot_appeal_detail(snap_compare: Any, tmp_path: Path) -> None:
    async def run(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("down", "down")
        await _settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=(100, 30), run_before=run)


def test_console_snapshot_audit_log(snap_compare: Any, tmp_path: Path) -> None:
    async def run(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.store.decide("s-000000000002", accept=True, note="verified owner", reviewer="ana")
        pilot.app.reload()
        await pilot.press("l")
        await _settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=(100, 30), run_before=run)
