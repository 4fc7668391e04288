"""pocketscan's end-to-end encryption core: pure, no I/O, no clock.

HAZMAT: these modules are primitives. Use :mod:`client.session` (sessions and message payloads)
and :mod:`client.crypto.attachments` (images, behind the scanner seam).

Modules: ``identity`` (Ed25519 identities, account ids), ``curve`` (X25519), ``kdf`` (HKDF,
KDF chains), ``aead`` (AES-256-CBC + HMAC-SHA256), ``x3dh`` (prekeys, key agreement),
``ratchet`` (Double Ratchet), ``attachments`` (attachment encryption), ``safety`` (safety numbers).
"""
