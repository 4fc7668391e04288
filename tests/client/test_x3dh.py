"""X3DH: agreement, signature check, prekey lifecycle, bundles, sessions built on it."""

from __future__ import annotations

import random

import pytest

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import (
    SIGNED_PREKEY_GRACE,
    SIGNED_PREKEY_ROTATION,
    PreKeyBundle,
    PreKeyState,
    initiate,
    respond,
)
from client.errors import DecryptionFailed, IdentityKeyChanged, InvalidBundle, InvalidSignature, NoSession
from client.session import Content, SessionRecord, decrypt_message, initiate_session

R = random.Random(3)
ALICE = IdentityKeyPair.generate(R.randbytes)
BOB = IdentityKeyPair.generate(R.randbytes)
MALLORY = IdentityKeyPair.generate(R.randbytes)


def bob_prekeys(n: int = 3) -> PreKeyState:
    return PreKeyState.create(BOB, 1000.0, one_time_count=n, rng=R.randbytes)


@pytest.mark.parametrize("with_one_time", [True, False])
def test_both_sides_derive_the_same_secret(with_one_time: bool) -> None:
    pk = bob_prekeys()
    bundle = pk.bundle(BOB.public, 1 if with_one_time else None)
    result = initiate(ALICE, bundle)
    sk, ad = respond(BOB, pk, result.header)
    assert sk == result.shared_secret and len(sk) == 32
    assert ad == result.associated_data == ALICE.public + BOB.public


def test_forged_signed_prekey_is_refused() -> None:
    pk = bob_prekeys()
    bundle = pk.bundle(BOB.public, 1)
    forged = PreKeyBundle(BOB.public, bundle.signed_prekey_id, MALLORY.x25519_public(),
                          bundle.signed_prekey_signature, 1, bundle.one_time_prekey)
    with pytest.raises(InvalidSignature):
        initiate(ALICE, forged)
    bad_sig = MALLORY.sign(bundle.signed_prekey)
    resigned = PreKeyBundle(BOB.public, 1, bundle.signed_prekey, bad_sig, None, None)
    with pytest.raises(InvalidSignature):
        initiate(ALICE, resigned)


def test_bundle_dict_round_trip_and_validation() -> None:
    bundle = bob_prekeys().bundle(BOB.public, 2)
    assert PreKeyBundle.from_dict(bundle.to_dict()) == bundle
    bad = bundle.to_dict() | {"signed_prekey": b"short"}
    with pytest.raises(InvalidBundle):
        PreKeyBundle.from_dict(bad)
    with pytest.raises(InvalidBundle):
        PreKeyBundle.from_dict("not a dict")
    with pytest.raises(InvalidBundle):
        PreKeyBundle.from_dict(bundle.to_dict() | {"signed_prekey_id": -1})


def test_signed_prekey_rotation_keeps_old_key_for_grace_then_deletes() -> None:
    pk = bob_prekeys()
    old_bundle = pk.bundle(BOB.public)
    assert not pk.needs_rotation(1000.0)
    assert pk.needs_rotation(1000.0 + SIGNED_PREKEY_ROTATION)
    pk.rotate(BOB, 2000.0, rng=R.randbytes)
    assert pk.current.key_id == 2
    result = initiate(ALICE, old_bundle)  # a late setup with the retired key still works
    assert respond(BOB, pk, result.header)[0] == result.shared_secret
    assert pk.prune(2000.0 + SIGNED_PREKEY_GRACE - 1) == []
    assert pk.prune(2000.0 + SIGNED_PREKEY_GRACE) == [1]
    with pytest.raises(DecryptionFailed):
        respond(BOB, pk, result.header)
    assert [s.key_id for s in pk.signed] == [2]


def test_prekey_state_serialises_and_replenishes() -> None:
    pk = bob_prekeys(2)
    pk.remove_one_time(1)
    fresh = pk.replenish(4, rng=R.randbytes)
    assert [k.key_id for k in fresh] == [3, 4, 5]
    again = PreKeyState.from_bytes(pk.to_bytes())
    assert again.bundle(BOB.public, 3) == pk.bundle(BOB.public, 3)
    upload = pk.upload(BOB.public)
    assert len(upload["one_time_prekeys"]) == 4 and upload["identity_key"] == BOB.public


def test_session_setup_consumes_one_time_prekey_only_on_success() -> None:
    pk = bob_prekeys()
    rec = initiate_session(ALICE, pk.bundle(BOB.public, 2), account_id=BOB.account_id)
    payload = rec.encrypt(b"hi")
    forged = payload[:-3] + bytes([payload[-3] ^ 1]) + payload[-2:]
    with pytest.raises(DecryptionFailed):
        decrypt_message(BOB, pk, None, forged, sender_account_id=ALICE.account_id)
    assert 2 in pk.one_time  # a forgery cannot burn the prekey
    d = decrypt_message(BOB, pk, None, payload, sender_account_id=ALICE.account_id)
    assert d.plaintext == b"hi" and d.new_session and d.used_one_time_prekey == 2
    assert 2 not in pk.one_time


def test_initial_header_repeated_until_first_reply() -> None:
    import cbor2

    pk = bob_prekeys()
    rec = initiate_session(ALICE, pk.bundle(BOB.public, 1), account_id=BOB.account_id)
    p1, p2 = rec.encrypt(b"1"), rec.encrypt(b"2")
    assert "x" in cbor2.loads(p1) and "x" in cbor2.loads(p2)
    d = decrypt_message(BOB, pk, None, p2, sender_account_id=ALICE.account_id)
    assert decrypt_message(BOB, pk, d.record, p1, sender_account_id=ALICE.account_id).plaintext == b"1"
    reply = d.record.encrypt(b"r")
    assert "x" not in cbor2.loads(reply)
    back = decrypt_message(ALICE, bob_prekeys(), rec, reply, sender_account_id=BOB.account_id)
    assert back.plaintext == b"r"
    assert "x" not in cbor2.loads(rec.encrypt(b"3"))


def test_bundle_for_wrong_account_or_changed_key_is_reported() -> None:
    pk = bob_prekeys()
    with pytest.raises(IdentityKeyChanged) as info:
        initiate_session(ALICE, pk.bundle(BOB.public, 1), account_id=MALLORY.account_id)
    assert info.value.account_id == MALLORY.account_id
    with pytest.raises(IdentityKeyChanged):
        initiate_session(ALICE, pk.bundle(BOB.public, 1), account_id=BOB.account_id,
                         known_identity_key=MALLORY.public)


def test_setup_message_from_impersonator_is_reported() -> None:
    pk = bob_prekeys()
    rec = initiate_session(MALLORY, pk.bundle(BOB.public, 1), account_id=BOB.account_id)
    with pytest.raises(IdentityKeyChanged):  # relay says it is from Alice, key says Mallory
        decrypt_message(BOB, pk, None, rec.encrypt(b"hi"), sender_account_id=ALICE.account_id)


def test_simultaneous_setup_converges() -> None:
    a_pk, b_pk = PreKeyState.create(ALICE, 0.0, one_time_count=2), bob_prekeys()
    a_rec = initiate_session(ALICE, b_pk.bundle(BOB.public, 1), account_id=BOB.account_id)
    b_rec = initiate_session(BOB, a_pk.bundle(ALICE.public, 1), account_id=ALICE.account_id)
    from_a, from_b = a_rec.encrypt(b"a1"), b_rec.encrypt(b"b1")
    a_rec = decrypt_message(ALICE, a_pk, a_rec, from_b, sender_account_id=BOB.account_id).record
    b_rec = decrypt_message(BOB, b_pk, b_rec, from_a, sender_account_id=ALICE.account_id).record
    for i in range(3):
        msg = a_rec.encrypt(b"a%d" % i)
        got = decrypt_message(BOB, b_pk, b_rec, msg, sender_account_id=ALICE.account_id)
        assert got.plaintext == b"a%d" % i
        msg = b_rec.encrypt(b"b%d" % i)
        got = decrypt_message(ALICE, a_pk, a_rec, msg, sender_account_id=BOB.account_id)
        assert got.plaintext == b"b%d" % i


def test_no_session_and_garbage_payloads() -> None:
    with pytest.raises(NoSession):
        SessionRecord(BOB.public).encrypt(b"x")
    for garbage in (b"", b"\xff" * 10, b"\xa0", b"x" * 300_000):
        with pytest.raises(DecryptionFailed):
            decrypt_message(BOB, bob_prekeys(), None, garbage, sender_account_id=ALICE.account_id)


def test_record_serialisation_round_trip() -> None:
    pk = bob_prekeys()
    rec = initiate_session(ALICE, pk.bundle(BOB.public, 1), account_id=BOB.account_id)
    p = rec.encrypt(b"x")
    rec2 = SessionRecord.from_bytes(rec.to_bytes())
    assert rec2.to_bytes() == rec.to_bytes()
    d = decrypt_message(BOB, pk, None, p, sender_account_id=ALICE.account_id)
    b2 = SessionRecord.from_bytes(d.record.to_bytes())
    got = decrypt_message(ALICE, pk, rec2, b2.encrypt(b"y"), sender_account_id=BOB.account_id)
    assert got.plaintext == b"y"


def test_content_round_trip_and_padding() -> None:
    c = Content("text", "m1", 12.5, text="héllo")
    raw = c.to_bytes()
    assert len(raw) % 160 == 0
    assert Content.from_bytes(raw) == c
    r = Content("receipt", "m2", 13.0, receipts=("m1", "m0"))
    assert Content.from_bytes(r.to_bytes()) == r
    with pytest.raises(DecryptionFailed):
        Content.from_bytes(b"no padding marker")


def test_shared_secret_follows_the_spec_formula() -> None:
    """SK = HKDF(F || DH1 || DH2 || DH3 || DH4), F = 32 x 0xFF, zero salt, our info (X3DH §2.2, §3.3)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def dh(priv: bytes, pub: bytes) -> bytes:
        return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))

    pk = bob_prekeys()
    ephemeral = bytes(range(1, 33))
    result = initiate(ALICE, pk.bundle(BOB.public, 1), rng=lambda n: ephemeral[:n])
    spk, otpk = pk.current.keypair, pk.one_time[1].keypair
    km = (dh(ALICE.x25519_private(), spk.public) + dh(ephemeral, BOB.x25519_public())
          + dh(ephemeral, spk.public) + dh(ephemeral, otpk.public))
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32),
                    info=b"pocketscan X3DH v1").derive(b"\xff" * 32 + km)
    assert result.shared_secret == expected
    ek_pub = X25519PrivateKey.from_private_bytes(ephemeral).public_key().public_bytes_raw()
    assert result.header.ephemeral_key == ek_pub
