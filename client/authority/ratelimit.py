"""Sliding-window rate limits per account and per address (pure: time comes in as ``now``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Decision", "RateLimiter"]

_MINUTE = 60.0
_DAY = 86_400.0


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: allowed, or refused with the window and the seconds until it frees."""

    allowed: bool
    scope: str = ""
    window: str = ""
    retry_after: float = 0.0


class RateLimiter:
    """At most ``per_minute`` and ``per_day`` requests per key, for each of several scopes at once.

    A request is charged to every scope only when all of them allow it (a refused request costs nothing).
    Keys idle for a day are forgotten, so memory stays bounded by the keys active in the last day.
    """

    def __init__(self, per_minute: int, per_day: int) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("rate limits must be at least 1")
        self.per_minute = per_minute
        self.per_day = per_day
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._last_sweep = 0.0

    def _window(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - _DAY:
            times.popleft()
        return times

    def check(self, scopes: dict[str, str], now: float) -> Decision:
        """Charge one request to ``scopes`` (scope name -> key, e.g. account and address) if all allow it."""
        self._sweep(now)
        windows = []
        for scope, ident in scopes.items():
            times = self._window((scope, ident), now)
            recent = sum(1 for t in reversed(times) if t > now - _MINUTE) if times else 0
            if recent >= self.per_minute:
                oldest_recent = times[len(times) - recent]
                return Decision(False, scope, "minute", max(0.0, oldest_recent + _MINUTE - now))
            if len(times) >= self.per_day:
                return Decision(False, scope, "day", max(0.0, times[0] + _DAY - now))
            windows.append(times)
        for times in windows:
            times.append(now)
        return Decision(True)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _MINUTE:
            return
        self._last_sweep = now
        for key in [k for k, v in self._seen.items() if not v or v[-1] <= now - _DAY]:
            del self._seen[key]
