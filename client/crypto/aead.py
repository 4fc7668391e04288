"""HAZMAT: use client.session. AES-256-CBC + HMAC-SHA256 authenticated encryption.

This is the AEAD the Double Ratchet specification recommends (§5.2, "ENCRYPT(mk, plaintext,
associated_data)"): PKCS#7-padded AES-256-CBC, then HMAC-SHA256 over ``associated_data ||
ciphertext``, the full 32-byte tag appended (libsignal truncates to 8 bytes; we keep 32).
The tag is verified in constant time *before* anything is decrypted; every failure raises
:class:`~client.errors.DecryptionFailed` without saying which check failed.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from client.errors import DecryptionFailed

__all__ = ["TAG_SIZE", "cbc_hmac_decrypt", "cbc_hmac_encrypt"]

TAG_SIZE = 32
"""Bytes of HMAC-SHA256 tag appended to each ciphertext."""


def cbc_hmac_encrypt(cipher_key: bytes, mac_key: bytes, iv: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Return ``ciphertext || tag``; ``tag = HMAC(mac_key, ad || ciphertext)``."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    tag = hmac.digest(mac_key, ad + ct, "sha256")
    return ct + tag


def cbc_hmac_decrypt(cipher_key: bytes, mac_key: bytes, iv: bytes, data: bytes, ad: bytes) -> bytes:
    """Verify and decrypt ``ciphertext || tag``; raise DecryptionFailed on any problem."""
    if len(data) < 16 + TAG_SIZE or (len(data) - TAG_SIZE) % 16:
        raise DecryptionFailed("message could not be decrypted (malformed ciphertext)")
    ct, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    expected = hmac.digest(mac_key, ad + ct, "sha256")
    if not hmac.compare_digest(tag, expected):
        raise DecryptionFailed("message could not be decrypted (authentication failed)")
    dec = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).decryptor()
    padded = dec.update(ct) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionFailed("message could not be decrypted (bad padding)") from None
