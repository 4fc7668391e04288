"""Session records: one per peer, replaced on save, deleted on demand, sealed at rest."""

from __future__ import annotations

from collections.abc import Callable

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.session import SessionRecord, initiate_session
from client.store.database import Database
from client.store.sessions import SessionRepository


def _session_with(peer: IdentityKeyPair) -> SessionRecord:
    me = IdentityKeyPair.generate()
    bundle = PreKeyState.create(peer, 0.0, one_time_count=1).bundle(peer.public, 1)
    return initiate_session(me, bundle, account_id=peer.account_id)


def test_one_record_per_peer_round_trips_and_is_sealed(database: Database,
                                                      file_bytes: Callable[[], bytes]) -> None:
    sessions = SessionRepository(database)
    bob, carol = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    assert sessions.load(bob.account_id) is None
    first = _session_with(bob)
    sessions.save(first)
    sessions.save(_session_with(carol))
    loaded = sessions.load(bob.account_id)
    assert loaded is not None and loaded.to_bytes() == first.to_bytes()
    first.encrypt(b"advance the ratchet")
    sessions.save(first)  # replaces bob's record
    assert sessions.load(bob.account_id).to_bytes() == first.to_bytes()  # type: ignore[union-attr]
    assert database.all("SELECT COUNT(*) FROM sessions") == [(2,)]
    raw = file_bytes()
    assert bob.account_id.encode() not in raw and bob.public not in raw

    sessions.delete(bob.account_id)
    sessions.delete(bob.account_id)  # deleting twice is harmless
    assert sessions.load(bob.account_id) is None and sessions.load(carol.account_id) is not None
