"""A deterministic fake core and settling helpers for the TUI's snapshot tests."""

from __future__ import annotations

import time
from typing import Any

from tests.tui.fakes import FakeCore, FakeSnapshot


class StableSnapshot(FakeSnapshot):
    """Snapshot age relative to now, so the panel always reads the same."""

    def status(self) -> Any:
        from dataclasses import replace

        return replace(super().status(), created_at=time.time() - 3 * 3600 - 5)


class StableFake(FakeCore):
    """The fake core with a :class:`StableSnapshot`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = StableSnapshot(self)


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
