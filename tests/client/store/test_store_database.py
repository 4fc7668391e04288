"""The shared database: nestable transactions, sealing bound to a label, keyed lookups, closing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.errors import StoreCorrupt, StoreLocked
from client.store.database import Database


def test_nested_transactions_commit_once_and_roll_back_together(database: Database,
                                                                raw: Callable[[str], list[tuple[object, ...]]]
                                                                ) -> None:
    with database.transaction():
        database.execute("INSERT INTO seen (iid) VALUES (?)", (b"a",))
        with database.transaction():
            database.execute("INSERT INTO seen (iid) VALUES (?)", (b"b",))
        assert raw("SELECT COUNT(*) FROM seen") == [(0,)]  # nothing visible before the outer COMMIT
    assert raw("SELECT COUNT(*) FROM seen") == [(2,)]
    with pytest.raises(RuntimeError), database.transaction():
        database.execute("INSERT INTO seen (iid) VALUES (?)", (b"c",))
        with database.transaction():
            database.execute("INSERT INTO seen (iid) VALUES (?)", (b"d",))
        raise RuntimeError("boom")
    assert sorted(r[0] for r in database.all("SELECT iid FROM seen")) == [b"a", b"b"]
    assert database.one("SELECT iid FROM seen WHERE iid = ?", (b"zz",)) is None


def test_sealed_values_are_bound_to_their_label(database: Database) -> None:
    blob = database.seal("contact", b"Bobby Tables")
    assert b"Bobby" not in blob and len(blob) == 24 + len(b"Bobby Tables") + 16
    assert database.unseal("contact", blob) == b"Bobby Tables"
    assert database.seal("contact", b"x") != database.seal("contact", b"x")  # fresh nonce each time
    with pytest.raises(StoreCorrupt):
        database.unseal("message", blob)  # moved to another column
    with pytest.raises(StoreCorrupt):
        database.unseal("contact", blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(StoreCorrupt):
        database.unseal("contact", b"short")


def test_lookup_macs_and_derived_keys_are_separated(database: Database) -> None:
    assert database.mac("peer", "alice") == database.mac("peer", "alice")
    macs = {database.mac("peer", "alice"), database.mac("name", "alice"), database.mac("peer", "bob")}
    assert len(macs) == 3
    keys = {database.derived_key(p) for p in ("media", "settings-mac", "media2")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert database.data_key not in keys


def test_a_closed_database_refuses_every_call(database: Database) -> None:
    database.close()
    database.close()  # closing twice is harmless
    with pytest.raises(StoreLocked):
        database.one("SELECT 1")
    with pytest.raises(StoreLocked), database.transaction():
        pass
