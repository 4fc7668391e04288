"""Our identity key pair and prekeys: round trips, absent before account creation, sealed at rest."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.errors import StoreCorrupt
from client.store.database import Database
from client.store.keys import KeyRepository
from client.store.secrets import SecretTable


def test_identity_and_prekeys_round_trip_and_stay_sealed(database: Database,
                                                         file_bytes: Callable[[], bytes]) -> None:
    keys = KeyRepository(SecretTable(database))
    assert keys.load_identity() is None and keys.load_prekeys() is None
    me = IdentityKeyPair.generate()
    prekeys = PreKeyState.create(me, 0.0, one_time_count=3)
    keys.save_identity(me)
    keys.save_prekeys(prekeys)
    assert keys.load_identity() == me
    loaded = keys.load_prekeys()
    assert loaded is not None and loaded.to_bytes() == prekeys.to_bytes()
    assert me.seed not in file_bytes() and prekeys.to_bytes() not in file_bytes()

    fewer = PreKeyState.create(me, 1.0, one_time_count=1)
    keys.save_prekeys(fewer)  # replaces, never adds a second row
    assert keys.load_prekeys().to_bytes() == fewer.to_bytes()  # type: ignore[union-attr]
    assert database.all("SELECT COUNT(*) FROM secrets") == [(2,)]


def test_a_tampered_identity_is_refused(database: Database) -> None:
    keys = KeyRepository(SecretTable(database))
    keys.save_identity(IdentityKeyPair.generate())
    (blob,) = database.one("SELECT v FROM secrets WHERE kind = 'identity'")
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with database.transaction():
        database.execute("UPDATE secrets SET v = ? WHERE kind = 'identity'", (flipped,))
    with pytest.raises(StoreCorrupt):
        keys.load_identity()
