"""Fixtures of the relay tests (helpers live in relayfix.py)."""

from __future__ import annotations

from relayfix import redis_prefix, redis_server

__all__ = ["redis_prefix", "redis_server"]
