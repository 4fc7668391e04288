"""Inbound dedupe: an envelope id is processed once; the oldest ids are pruned beyond SEEN_KEEP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import client.store.dedupe as dedupe_module
from client.store.database import Database
from client.store.dedupe import DedupeRepository


def test_an_envelope_is_seen_once(database: Database, file_bytes: Callable[[], bytes]) -> None:
    dedupe = DedupeRepository(database)
    assert not dedupe.seen("inbound-envelope-1")
    assert dedupe.mark_seen("inbound-envelope-1")
    assert not dedupe.mark_seen("inbound-envelope-1")
    assert dedupe.seen("inbound-envelope-1") and not dedupe.seen("inbound-envelope-2")
    assert b"inbound-envelope" not in file_bytes()


def test_the_oldest_ids_are_pruned_beyond_the_bound(database: Database,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe_module, "SEEN_KEEP", 10)
    dedupe = DedupeRepository(database)
    with database.transaction():
        for i in range(1, 1001):  # pruning runs every 1000th id
            dedupe.mark_seen(f"e{i}")
    assert database.all("SELECT COUNT(*) FROM seen") == [(10,)]
    assert not dedupe.seen("e990") and dedupe.seen("e991") and dedupe.seen("e1000")
