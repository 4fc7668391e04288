"""HAZMAT: use client.session. The Double Ratchet (Signal, "The Double Ratchet Algorithm", rev. 1).

Implements spec §3.2-§3.5 (state variables, initialisation, encrypt, decrypt with the DH ratchet
and skipped message keys) with the §5.2 recommended primitives: X25519, KDF_RK = HKDF-SHA256,
KDF_CK = HMAC-SHA256 with constants 0x01/0x02, ENCRYPT = AES-256-CBC + HMAC-SHA256 keyed from an
80-byte HKDF expansion of the message key (see :mod:`client.crypto.kdf` and :mod:`client.crypto.aead`).

Beyond the spec's pseudo-code, as libsignal does:

* **Caps**: a message may not skip more than :data:`MAX_SKIP` (25,000) keys in one chain
  (:class:`~client.errors.TooFarAhead`), and at most :data:`MAX_STORED_SKIPPED` (2,000) skipped
  keys are kept, oldest evicted first.
* **Transactional decryption**: everything is computed into locals and committed only after the
  AEAD tag verified, so a forged, truncated, replayed or too-far message changes nothing.
* **Duplicate detection**: a message whose key was already used (same chain, counter behind,
  not among the skipped keys; or an older chain we remember) raises
  :class:`~client.errors.DuplicateMessage` rather than attempting a bogus DH step.

The header is ``dh (32 bytes) || pn (u32 BE) || n (u32 BE)``; the AEAD's associated data is
``AD || header`` where AD comes from X3DH.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import cbor2

from client.crypto.aead import cbc_hmac_decrypt, cbc_hmac_encrypt
from client.crypto.curve import KeyPair, generate_keypair, public_from_private, x25519
from client.crypto.identity import Rng
from client.crypto.kdf import kdf_ck, kdf_rk, message_keys
from client.errors import CryptoError, DecryptionFailed, DuplicateMessage, TooFarAhead

__all__ = ["HEADER_SIZE", "MAX_PREV_CHAINS", "MAX_SKIP", "MAX_STORED_SKIPPED", "Header", "RatchetState"]

MAX_SKIP = 25_000
"""Most message keys one incoming message may make us skip in a single chain (libsignal: 25,000)."""
MAX_STORED_SKIPPED = 2_000
"""Most skipped message keys kept for late messages (libsignal: 2,000); oldest are evicted."""
MAX_PREV_CHAINS = 64
"""Previous remote ratchet keys remembered to recognise duplicates from finished chains."""
HEADER_SIZE = 40
"""Bytes in an encoded header."""

_HDR = struct.Struct(">II")


@dataclass(frozen=True)
class Header:
    """A message header: the sender's ratchet public key, previous chain length, message number."""

    dh: bytes
    pn: int
    n: int

    def to_bytes(self) -> bytes:
        """Fixed 40-byte encoding."""
        return self.dh + _HDR.pack(self.pn, self.n)

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse; raise DecryptionFailed if malformed."""
        if not isinstance(data, bytes) or len(data) != HEADER_SIZE:
            raise DecryptionFailed("message could not be decrypted (malformed header)")
        pn, n = _HDR.unpack(data[32:])
        return cls(data[:32], pn, n)


def _open(seed: bytes, ad: bytes, header: Header, ciphertext: bytes) -> bytes:
    keys = message_keys(seed)
    return cbc_hmac_decrypt(keys.cipher_key, keys.mac_key, keys.iv, ciphertext, ad + header.to_bytes())


def _advance(ck: bytes, start: int, until: int, dh: bytes) -> tuple[bytes, list[tuple[bytes, int, bytes]]]:
    """Step chain key ``ck`` (at counter ``start``) to counter ``until``, collecting skipped keys."""
    if until - start > MAX_SKIP:
        raise TooFarAhead(f"message refused: it would skip {until - start} messages (limit {MAX_SKIP})")
    skipped: list[tuple[bytes, int, bytes]] = []
    keep_from = until - MAX_STORED_SKIPPED
    for n in range(start, until):
        ck, seed = kdf_ck(ck)
        if n >= keep_from:
            skipped.append((dh, n, seed))
    return ck, skipped


@dataclass
class RatchetState:
    """One side of a Double Ratchet session (spec §3.2 state variables)."""

    dhs: KeyPair
    dhr: bytes | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    ad: bytes
    ns: int = 0
    nr: int = 0
    pn: int = 0
    skipped: OrderedDict[tuple[bytes, int], bytes] = field(default_factory=OrderedDict)
    prev_remote: list[bytes] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"RatchetState(ns={self.ns}, nr={self.nr}, pn={self.pn}, skipped={len(self.skipped)})"

    @classmethod
    def init_initiator(cls, shared_secret: bytes, ad: bytes, remote_ratchet_key: bytes, *,
                       rng: Rng = os.urandom) -> RatchetState:
        """RatchetInitAlice: the initiator knows the responder's signed prekey as first ratchet key."""
        dhs = generate_keypair(rng)
        rk, cks = kdf_rk(shared_secret, x25519(dhs.private, remote_ratchet_key))
        return cls(dhs=dhs, dhr=remote_ratchet_key, rk=rk, cks=cks, ckr=None, ad=ad)

    @classmethod
    def init_responder(cls, shared_secret: bytes, ad: bytes, ratchet_keypair: KeyPair) -> RatchetState:
        """RatchetInitBob: the responder's signed prekey pair is its first ratchet key."""
        return cls(dhs=ratchet_keypair, dhr=None, rk=shared_secret, cks=None, ckr=None, ad=ad)

    def encrypt(self, plaintext: bytes) -> tuple[Header, bytes]:
        """RatchetEncrypt: return the header and ``ciphertext || tag``."""
        if self.cks is None:
            raise CryptoError("cannot send before the first message from the peer arrived")
        self.cks, seed = kdf_ck(self.cks)
        header = Header(self.dhs.public, self.pn, self.ns)
        self.ns += 1
        keys = message_keys(seed)
        ad = self.ad + header.to_bytes()
        return header, cbc_hmac_encrypt(keys.cipher_key, keys.mac_key, keys.iv, plaintext, ad)

    def decrypt(self, header: Header, ciphertext: bytes, *, rng: Rng = os.urandom) -> bytes:
        """RatchetDecrypt, transactional: on any error the state is exactly as before."""
        key = (header.dh, header.n)
        seed = self.skipped.get(key)
        if seed is not None:
            plaintext = _open(seed, self.ad, header, ciphertext)
            del self.skipped[key]
            return plaintext
        if self.dhr is not None and header.dh == self.dhr:
            if header.n < self.nr or self.ckr is None:
                raise DuplicateMessage("message already received (or its key has expired)")
            ckr, skipped = _advance(self.ckr, self.nr, header.n, header.dh)
            ckr, seed = kdf_ck(ckr)
            plaintext = _open(seed, self.ad, header, ciphertext)
            self.ckr, self.nr = ckr, header.n + 1
            self._store_skipped(skipped)
            return plaintext
        if header.dh in self.prev_remote:
            raise DuplicateMessage("message already received (or its key has expired)")
        # DH ratchet step (spec §3.5 DHRatchet), computed into locals first.
        old_skipped: list[tuple[bytes, int, bytes]] = []
        if self.ckr is not None and self.dhr is not None:
            _, old_skipped = _advance(self.ckr, self.nr, header.pn, self.dhr)
        rk, ckr = kdf_rk(self.rk, x25519(self.dhs.private, header.dh))
        ckr, new_skipped = _advance(ckr, 0, header.n, header.dh)
        ckr, seed = kdf_ck(ckr)
        plaintext = _open(seed, self.ad, header, ciphertext)
        new_dhs = generate_keypair(rng)
        rk, cks = kdf_rk(rk, x25519(new_dhs.private, header.dh))
        # Commit.
        if self.dhr is not None:
            self.prev_remote = [*self.prev_remote, self.dhr][-MAX_PREV_CHAINS:]
        self._store_skipped(old_skipped + new_skipped)
        self.pn, self.ns, self.nr = self.ns, 0, header.n + 1
        self.dhr, self.dhs, self.rk, self.cks, self.ckr = header.dh, new_dhs, rk, cks, ckr
        return plaintext

    def _store_skipped(self, keys: list[tuple[bytes, int, bytes]]) -> None:
        for dh, n, seed in keys:
            self.skipped[(dh, n)] = seed
        while len(self.skipped) > MAX_STORED_SKIPPED:
            self.skipped.popitem(last=False)

    def to_bytes(self) -> bytes:
        """Serialise the whole state (secret: store it encrypted)."""
        return cbor2.dumps({
            "v": 1,
            "dhs": self.dhs.private,
            "dhr": self.dhr,
            "rk": self.rk,
            "cks": self.cks,
            "ckr": self.ckr,
            "ad": self.ad,
            "ns": self.ns,
            "nr": self.nr,
            "pn": self.pn,
            "skipped": [[dh, n, seed] for (dh, n), seed in self.skipped.items()],
            "prev": self.prev_remote,
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetState:
        """Inverse of :meth:`to_bytes`."""
        d = cbor2.loads(data)
        if not isinstance(d, dict) or d.get("v") != 1:
            raise CryptoError("unknown ratchet state version")
        return cls(
            dhs=KeyPair(d["dhs"], public_from_private(d["dhs"])),
            dhr=d["dhr"],
            rk=d["rk"],
            cks=d["cks"],
            ckr=d["ckr"],
            ad=d["ad"],
            ns=d["ns"],
            nr=d["nr"],
            pn=d["pn"],
            skipped=OrderedDict(((dh, n), seed) for dh, n, seed in d["skipped"]),
            prev_remote=list(d["prev"]),
        )
