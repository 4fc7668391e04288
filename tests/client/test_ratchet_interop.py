"""Cross-implementation check: our Double Ratchet interoperates with the independent `doubleratchet`
package (Syndace) configured with the same spec-recommended primitives and our info strings.

Both implement spec §5.2: KDF_RK = HKDF(salt=rk, ikm=dh), KDF_CK = HMAC 0x02 (next chain) / 0x01
(message key), AEAD = HKDF(80) -> AES-256-CBC + full HMAC-SHA256 tag over AD || ciphertext. Messages
encrypted by one must decrypt with the other in both directions, across DH ratchet steps and
out-of-order delivery: a strong check of every derivation beyond the single-step chain-key vector.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

import pytest

dr = pytest.importorskip("doubleratchet", reason="the reference `doubleratchet` package is not installed")
from doubleratchet.recommended import (  # noqa: E402
    HashFunction,
    aead_aes_hmac,
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)

from client.crypto.curve import generate_keypair  # noqa: E402
from client.crypto.kdf import MESSAGE_KEYS_INFO, ROOT_INFO  # noqa: E402
from client.crypto.ratchet import Header, RatchetState  # noqa: E402

AD = b"A" * 32 + b"B" * 32
SK = bytes(range(32))


class RootKDF(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return ROOT_INFO


class ChainKDF(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


class AEAD(aead_aes_hmac.AEAD):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return MESSAGE_KEYS_INFO


class RefRatchet(dr.DoubleRatchet):  # type: ignore[misc]
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Any) -> bytes:
        pn, n = header.previous_sending_chain_length, header.sending_chain_length
        return associated_data + header.ratchet_pub + struct.pack(">II", pn, n)


CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    "root_chain_kdf": RootKDF,
    "message_chain_kdf": ChainKDF,
    "message_chain_constant": b"\x02\x01",
    "dos_protection_threshold": 100,
    "max_num_skipped_message_keys": 1000,
    "aead": AEAD,
}


def to_ref(h: Header, c: bytes) -> Any:
    return dr.EncryptedMessage(header=dr.Header(h.dh, h.pn, h.n), ciphertext=c)


def from_ref(m: Any) -> tuple[Header, bytes]:
    h = m.header
    return Header(h.ratchet_pub, h.previous_sending_chain_length, h.sending_chain_length), m.ciphertext


def test_ours_as_initiator_reference_as_responder() -> None:
    async def run() -> None:
        bob_spk = generate_keypair()
        alice = RatchetState.init_initiator(SK, AD, bob_spk.public)
        first = alice.encrypt(b"hello from ours")
        second = alice.encrypt(b"second")
        bob, pt = await RefRatchet.decrypt_initial_message(
            **CONFIG, shared_secret=SK, own_ratchet_priv=bob_spk.private, message=to_ref(*first),
            associated_data=AD)
        assert pt == b"hello from ours"
        assert await bob.decrypt_message(to_ref(*second), AD) == b"second"
        for i in range(3):  # DH ratchet steps both ways, with a reordered pair
            r1 = await bob.encrypt_message(b"ref %d a" % i, AD)
            r2 = await bob.encrypt_message(b"ref %d b" % i, AD)
            assert alice.decrypt(*from_ref(r2)) == b"ref %d b" % i
            assert alice.decrypt(*from_ref(r1)) == b"ref %d a" % i
            o1, o2 = alice.encrypt(b"ours %d a" % i), alice.encrypt(b"ours %d b" % i)
            assert await bob.decrypt_message(to_ref(*o2), AD) == b"ours %d b" % i
            assert await bob.decrypt_message(to_ref(*o1), AD) == b"ours %d a" % i

    asyncio.run(run())


def test_reference_as_initiator_ours_as_responder() -> None:
    async def run() -> None:
        bob_spk = generate_keypair()
        alice, first = await RefRatchet.encrypt_initial_message(
            **CONFIG, shared_secret=SK, recipient_ratchet_pub=bob_spk.public, message=b"hello from ref",
            associated_data=AD)
        bob = RatchetState.init_responder(SK, AD, bob_spk)
        assert bob.decrypt(*from_ref(first)) == b"hello from ref"
        for _ in range(3):
            msg = os.urandom(40)
            assert await alice.decrypt_message(to_ref(*bob.encrypt(msg)), AD) == msg
            assert bob.decrypt(*from_ref(await alice.encrypt_message(msg, AD))) == msg

    asyncio.run(run())
