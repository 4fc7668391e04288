"""A deterministic fake core and settling helpers for the TUI's snapshot tests."""

from __future__ import annotations

import time
from typing import Any

from tests.tui.fakes import FakeCore


class StableFake(FakeCore):
    """Snapshot age relative to now, so the panel always reads the same."""

    def scanner_status(self) -> Any:
        from dataclasses import replace

        return replace(super().scanner_status(), created_at=time.time() - 3 * 3600 - 5)


async def _settle(pilot: Any) -> None:
    for widget in pilot.app.screen.query("Input"):
        widget.cursor_blink = False  # a blinking cursor makes screenshots depend on timing
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


async def _loaded(pilot: Any) -> None:
    """Let workers finish and their result messages be handled."""
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await _settle(pilot)
        await pilot.pause(0.1)
