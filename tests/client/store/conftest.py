"""Fixtures for the store's repositories: a real SQLite file in ``tmp_path`` with the store schema.

Each repository is built alone over a bare :class:`~client.store.database.Database` (no
:class:`~client.store.Store`, no passphrase): what it writes is what the file holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client.store.database import Database, connect, init_schema


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """An open database on a fresh schema-v1 file (``tmp_path / "store.sqlite"``)."""
    key = os.urandom(32)
    conn = connect(str(tmp_path / "store.sqlite"))
    init_schema(conn, {"protection": b"none", "data_key": key})
    db = Database(conn, key)
    yield db
    db.close()


@pytest.fixture
def file_bytes(tmp_path: Path) -> Callable[[], bytes]:
    """Everything on disk under ``tmp_path`` (the store file and any journal), concatenated."""
    return lambda: b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())


@pytest.fixture
def raw(tmp_path: Path) -> Callable[[str], list[tuple[object, ...]]]:
    """Run a query on the store file through a second, plain sqlite3 connection."""
    import sqlite3

    def query(sql: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(tmp_path / "store.sqlite")
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    return query
