"""The reviewers' console shows threshold vouchers per account as "k of t" (``v``), opens nothing below t,
and says how an opened report came out of its vouchers. Vouchers arrive through the real inbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from client.authority.console import ReviewConsole
from client.authority.inbox import Inbox
from client.authority.store import AuthorityStore
from client.vouchers.voucher import PERIOD_SECONDS
from scanner.authority import AuthorityKey
from tests.authority.voucher_senders import Sender, receive

ALICE, BOB = "a" * 52, "b" * 52
NOW = 100 * PERIOD_SECONDS


def _store(path: Path, authority: AuthorityKey, senders: dict[str, tuple[int, int]]) -> AuthorityStore:
    """``senders``: account -> (threshold, real vouchers sent)."""
    clock = iter(range(1_780_000_000, 1_780_001_000))
    store = AuthorityStore(path, create=True, clock=lambda: float(next(clock)))
    inbox = Inbox(store, authority.seed)
    for account, (threshold, count) in senders.items():
        sender = Sender(authority, threshold, account=account)
        for n in range(count):
            receive(inbox, account, sender.real(n, now=NOW))
    return store


async def _settle(pilot: Any) -> None:
    for widget in pilot.app.screen.query("Input"):
        widget.cursor_blink = False
    await pilot.pause()


def test_console_shows_k_of_t_and_opened_reports(tmp_path: Path) -> None:
    authority = AuthorityKey.generate()
    store = _store(tmp_path / "s.sqlite", authority, {ALICE: (3, 2), BOB: (2, 2)})

    async def main() -> None:
        app = ReviewConsole(store, reviewer="ana", refresh_every=0)
        async with app.run_test(size=(100, 30)) as pilot:
            await _settle(pilot)
            # only bob's two opened reports reach the queue; alice's vouchers stay held
            assert app.query_one("#queue").row_count == 2
            detail = str(app.query_one("#detail").render())
            assert "threshold opened when 2 vouchers reached t=2" in detail
            await pilot.press("v")
            await pilot.pause()
            table = app.query_one("#vouchers")
            assert not table.has_class("hidden") and app.query_one("#queue").has_class("hidden")
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            assert rows == [[ALICE[:16], str(100), "2 of 3", "held"],
                            [BOB[:16], str(100), "opened", "in queue"]]
            await pilot.press("l")
            await pilot.pause()
            assert table.has_class("hidden") and not app.query_one("#audit").has_class("hidden")

    asyncio.run(main())
    store.close()


pytest.importorskip("pytest_textual_snapshot")


def test_console_snapshot_vouchers(snap_compare: Any, tmp_path: Path) -> None:
    authority = AuthorityKey.generate()
    store = _store(tmp_path / "s.sqlite", authority, {ALICE: (3, 2), BOB: (30, 1)})

    async def run(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("v")
        await _settle(pilot)

    assert snap_compare(ReviewConsole(store, reviewer="ana", refresh_every=0), terminal_size=(100, 30),
                        run_before=run)
