"""Double Ratchet: round trips, caps, transactional failure, forward secrecy, post-compromise recovery."""

from __future__ import annotations

import random

import pytest

from client.crypto import ratchet as ratchet_mod
from client.crypto.curve import generate_keypair, x25519
from client.crypto.kdf import kdf_ck, kdf_rk, message_keys
from client.crypto.ratchet import MAX_SKIP, MAX_STORED_SKIPPED, Header, RatchetState
from client.errors import CryptoError, DecryptionFailed, DuplicateMessage, TooFarAhead

AD = b"A" * 32 + b"B" * 32


def _rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


def pair(seed: int = 1) -> tuple[RatchetState, RatchetState]:
    """Alice (initiator) and Bob (responder) sharing SK, as X3DH would leave them."""
    r = _rng(seed)
    sk = r.randbytes(32)
    bob_spk = generate_keypair(r.randbytes)
    alice = RatchetState.init_initiator(sk, AD, bob_spk.public, rng=r.randbytes)
    bob = RatchetState.init_responder(sk, AD, bob_spk)
    return alice, bob


def clone(state: RatchetState) -> RatchetState:
    return RatchetState.from_bytes(state.to_bytes())


def test_round_trip_both_directions() -> None:
    alice, bob = pair()
    for i in range(3):
        h, c = alice.encrypt(b"a%d" % i)
        assert bob.decrypt(h, c) == b"a%d" % i
        h, c = bob.encrypt(b"b%d" % i)
        assert alice.decrypt(h, c) == b"b%d" % i


def test_responder_cannot_send_first() -> None:
    _, bob = pair()
    with pytest.raises(CryptoError):
        bob.encrypt(b"x")


def test_out_of_order_within_chain_and_across_ratchet() -> None:
    alice, bob = pair()
    msgs = [alice.encrypt(b"m%d" % i) for i in range(5)]
    assert bob.decrypt(*msgs[4]) == b"m4"
    reply = bob.encrypt(b"r")
    assert alice.decrypt(*reply) == b"r"
    late = alice.encrypt(b"new chain")
    assert bob.decrypt(*late) == b"new chain"
    for i in (2, 0, 3, 1):  # old chain keys were stored as skipped
        assert bob.decrypt(*msgs[i]) == b"m%d" % i
    assert not bob.skipped


def test_duplicate_is_detected_and_state_unchanged() -> None:
    alice, bob = pair()
    h, c = alice.encrypt(b"once")
    assert bob.decrypt(h, c) == b"once"
    before = bob.to_bytes()
    with pytest.raises(DuplicateMessage):
        bob.decrypt(h, c)
    assert bob.to_bytes() == before
    # A replay from a finished chain is also a duplicate, not a bogus ratchet step.
    assert alice.decrypt(*bob.encrypt(b"r")) == b"r"
    assert bob.decrypt(*alice.encrypt(b"next")) == b"next"
    with pytest.raises(DuplicateMessage):
        bob.decrypt(h, c)


@pytest.mark.parametrize("part", ["header_dh", "header_n", "ciphertext", "tag", "truncated", "empty"])
def test_tampering_is_rejected_and_session_survives(part: str) -> None:
    alice, bob = pair()
    h, c = alice.encrypt(b"payload")
    before = bob.to_bytes()
    bad_h, bad_c = h, c
    if part == "header_dh":
        bad_h = Header(bytes([h.dh[0] ^ 1]) + h.dh[1:], h.pn, h.n)
    elif part == "header_n":
        bad_h = Header(h.dh, h.pn, h.n + 1)
    elif part == "ciphertext":
        bad_c = bytes([c[0] ^ 0x80]) + c[1:]
    elif part == "tag":
        bad_c = c[:-1] + bytes([c[-1] ^ 1])
    elif part == "truncated":
        bad_c = c[:-5]
    else:
        bad_c = b""
    with pytest.raises(DecryptionFailed):
        bob.decrypt(bad_h, bad_c)
    assert bob.to_bytes() == before
    assert bob.decrypt(h, c) == b"payload"


def test_header_parsing_rejects_wrong_length() -> None:
    alice, _ = pair()
    h, _ = alice.encrypt(b"x")
    with pytest.raises(DecryptionFailed):
        Header.from_bytes(h.to_bytes()[:-1])
    assert Header.from_bytes(h.to_bytes()) == h


def test_max_skip_forward_jump_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratchet_mod, "MAX_SKIP", 50)
    alice, bob = pair()
    msgs = [alice.encrypt(b"%d" % i) for i in range(52)]
    before = bob.to_bytes()
    with pytest.raises(TooFarAhead):
        bob.decrypt(*msgs[51])  # would skip 51 > 50
    assert bob.to_bytes() == before
    assert bob.decrypt(*msgs[50]) == b"50"  # skipping exactly 50 is allowed
    assert bob.decrypt(*msgs[3]) == b"3"


def test_real_max_skip_values() -> None:
    assert (MAX_SKIP, MAX_STORED_SKIPPED) == (25_000, 2_000)


def test_forged_far_header_is_cheap_to_refuse() -> None:
    alice, bob = pair()
    h, c = alice.encrypt(b"x")
    with pytest.raises(TooFarAhead):
        bob.decrypt(Header(h.dh, 0, MAX_SKIP + 1), c)
    assert bob.decrypt(h, c) == b"x"


def test_stored_skipped_keys_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratchet_mod, "MAX_STORED_SKIPPED", 10)
    alice, bob = pair()
    msgs = [alice.encrypt(b"%d" % i) for i in range(31)]
    assert bob.decrypt(*msgs[30]) == b"30"
    assert len(bob.skipped) == 10
    assert bob.decrypt(*msgs[29]) == b"29"  # among the newest kept
    with pytest.raises(DuplicateMessage):  # evicted: refused, not mis-decrypted
        bob.decrypt(*msgs[5])


def test_serialisation_round_trip_mid_conversation() -> None:
    alice, bob = pair()
    msgs = [alice.encrypt(b"%d" % i) for i in range(4)]
    assert bob.decrypt(*msgs[3]) == b"3"
    bob2 = clone(bob)
    assert bob2.to_bytes() == bob.to_bytes()
    assert bob2.decrypt(*msgs[1]) == b"1"
    assert alice.decrypt(*bob2.encrypt(b"back")) == b"back"


def test_forward_secrecy_old_message_keys_are_gone() -> None:
    alice, bob = pair()
    # Derive message 0's key independently from Bob's initial state, then use it up.
    rk0 = bob.rk
    h, c = alice.encrypt(b"secret")
    _, ck = kdf_rk(rk0, x25519(bob.dhs.private, h.dh))
    _, seed = kdf_ck(ck)
    keys = message_keys(seed)
    assert bob.decrypt(h, c) == b"secret"
    # Continue so the DH ratchet turns over too.
    assert alice.decrypt(*bob.encrypt(b"r")) == b"r"
    assert bob.decrypt(*alice.encrypt(b"s")) == b"s"
    leaked = bob.to_bytes()
    for secret in (seed, keys.cipher_key, keys.mac_key, ck, rk0):
        assert secret not in leaked
    # An attacker holding Bob's current state cannot open the old message.
    with pytest.raises(DecryptionFailed):
        RatchetState.from_bytes(leaked).decrypt(h, c)


def test_post_compromise_recovery() -> None:
    """An attacker who stole Alice's state reads her chains until one DH round trip heals the session."""
    alice, bob = pair(7)
    assert bob.decrypt(*alice.encrypt(b"hello")) == b"hello"
    eve = clone(alice)  # the attacker steals Alice's whole state
    reply = bob.encrypt(b"bob reply")
    assert eve.decrypt(*reply) == b"bob reply"  # the leak has power...
    assert alice.decrypt(*reply) == b"bob reply"
    assert bob.decrypt(*alice.encrypt(b"after healing")) == b"after healing"  # Alice's fresh DH key
    later = bob.encrypt(b"bob again")
    assert alice.decrypt(*later) == b"bob again"
    with pytest.raises(DecryptionFailed):  # ...until the DH ratchet locks the attacker out
        eve.decrypt(*later)


def test_post_compromise_attacker_cannot_follow_new_chains() -> None:
    alice, bob = pair(9)
    assert bob.decrypt(*alice.encrypt(b"1")) == b"1"
    stolen_bob = clone(bob)
    # While the keys are unchanged, the stolen state decrypts Alice's messages.
    assert alice.decrypt(*bob.encrypt(b"2")) == b"2"
    h, c = alice.encrypt(b"3")
    assert stolen_bob.decrypt(h, c) == b"3"
    assert bob.decrypt(h, c) == b"3"  # Bob's ratchet step draws a key the thief never saw
    assert alice.decrypt(*bob.encrypt(b"4")) == b"4"
    h2, c2 = alice.encrypt(b"5")
    assert bob.decrypt(h2, c2) == b"5"
    with pytest.raises(DecryptionFailed):
        stolen_bob.decrypt(h2, c2)
