"""Known-answer tests: libsignal's chain-key vector, HKDF (RFC 5869), safety numbers."""

from __future__ import annotations

from client.crypto.identity import IdentityKeyPair, account_id_from_public_key
from client.crypto.kdf import hkdf, kdf_ck, kdf_rk, message_keys
from client.crypto.safety import (
    fingerprint_half,
    format_safety_number,
    safety_number,
    safety_numbers_match,
    signal_safety_number,
)

# libsignal ChainKeyTest.testChainKeyDerivationV3 (libsignal-protocol-java, also libsignal's Rust keys.rs).
SEED = bytes.fromhex("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
CIPHER_KEY = bytes.fromhex("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217")
MAC_KEY = bytes.fromhex("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b")
NEXT_CHAIN_KEY = bytes.fromhex("28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d")

# libsignal NumericFingerprintGeneratorTest.testVectorsVersion1 / fingerprint.rs.
ALICE_IDENTITY = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
BOB_IDENTITY = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
DISPLAYABLE = "300354477692869396892869876765458257569162576843440918079131"


def test_chain_key_matches_libsignal_vector() -> None:
    next_ck, seed = kdf_ck(SEED)
    assert next_ck == NEXT_CHAIN_KEY
    keys = message_keys(seed, info=b"WhisperMessageKeys")
    assert keys.cipher_key == CIPHER_KEY
    assert keys.mac_key == MAC_KEY
    assert len(keys.iv) == 16


def test_our_info_string_gives_different_keys() -> None:
    _, seed = kdf_ck(SEED)
    ours = message_keys(seed)
    assert ours.cipher_key != CIPHER_KEY and len(ours.cipher_key) == 32


def test_hkdf_rfc5869_case_1() -> None:
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    okm = hkdf(ikm, salt=salt, info=info, length=42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_root_kdf_splits_64_bytes() -> None:
    rk, ck = kdf_rk(b"\x01" * 32, b"\x02" * 32)
    out = hkdf(b"\x02" * 32, salt=b"\x01" * 32, info=b"pocketscan ratchet v1", length=64)
    assert (rk, ck) == (out[:32], out[32:])


def test_safety_number_matches_libsignal_vector() -> None:
    a_id, b_id = b"+14152222222", b"+14153333333"
    assert signal_safety_number(a_id, ALICE_IDENTITY, b_id, BOB_IDENTITY) == DISPLAYABLE
    assert signal_safety_number(b_id, BOB_IDENTITY, a_id, ALICE_IDENTITY) == DISPLAYABLE


def test_per_party_halves_match_libsignal() -> None:
    # The displayable number is the two halves sorted: Bob's half sorts first here.
    alice_half = fingerprint_half(ALICE_IDENTITY, b"+14152222222")
    bob_half = fingerprint_half(BOB_IDENTITY, b"+14153333333")
    assert sorted([alice_half, bob_half]) == [DISPLAYABLE[:30], DISPLAYABLE[30:]]


def test_our_safety_number_is_symmetric_and_key_bound() -> None:
    a, b, c = (IdentityKeyPair(bytes([i]) * 32) for i in (1, 2, 3))
    n = safety_number(a.public, b.public)
    assert len(n) == 60 and n.isdigit()
    assert n == safety_number(b.public, a.public)
    assert n != safety_number(a.public, c.public)
    # Our adaptation = Signal's construction over (account id, raw Ed25519 key).
    assert n == signal_safety_number(a.account_id.encode(), a.public, b.account_id.encode(), b.public)
    assert safety_numbers_match(format_safety_number(n), n)
    assert format_safety_number(n).count("\n") == 2


def test_account_id_formula() -> None:
    import base64
    import hashlib

    pub = IdentityKeyPair(b"\x07" * 32).public
    expected = base64.b32encode(hashlib.sha256(pub).digest()[:20]).decode().rstrip("=").lower()
    assert account_id_from_public_key(pub) == expected
    assert len(expected) == 32


def test_hkdf_agrees_with_cryptography() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for length, salt in ((32, None), (80, b"s" * 32), (64, b"\x01"), (100, b"")):
        ref = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=b"i").derive(b"ikm")
        assert hkdf(b"ikm", salt=salt, info=b"i", length=length) == ref


def test_account_id_display_and_parse() -> None:
    import pytest

    from client.crypto.identity import format_account_id, parse_account_id

    aid = IdentityKeyPair(b"\x09" * 32).account_id
    shown = format_account_id(aid)
    assert shown.count("-") == 7 and shown.replace("-", "") == aid
    assert parse_account_id(shown.upper()) == aid
    assert parse_account_id(" ".join(shown.split("-"))) == aid
    for bad in ("", "abc", aid[:-1], aid[:-1] + "1", aid + "a"):
        with pytest.raises(ValueError):
            parse_account_id(bad)


def test_reprs_never_show_secrets() -> None:
    from client.crypto.curve import generate_keypair
    from client.crypto.ratchet import RatchetState

    ident = IdentityKeyPair(b"\x05" * 32)
    assert ident.seed.hex() not in repr(ident) and "0505" not in repr(ident)
    kp = generate_keypair()
    state = RatchetState.init_initiator(b"\x11" * 32, b"ad", kp.public)
    text = repr(state) + repr(kp)
    assert state.rk.hex()[:8] not in text and kp.private.hex()[:8] not in text
