"""`pocketscan bench crypto`: Double Ratchet messages/s and attachment MB/s beside raw AES-GCM.

Everything runs in one process, in one run, on the same data:

* ``ratchet_chain``: one side sends, the other decrypts in order (symmetric KDF-chain steps only),
  through the full recipe (``SessionRecord.encrypt`` / ``session.decrypt_message``, CBOR payloads);
* ``ratchet_pingpong``: strict alternation, so every message also pays a DH ratchet step
  (two X25519 operations, a key generation and an HKDF);
* ``aesgcm_msg``: raw AES-256-GCM (``cryptography``) encrypt+decrypt of the same plaintexts with one
  key: the limit any message layer on this machine can approach;
* ``attachment``: ``encrypt_image`` (seam check = SHA-256 of the image, padding, AES-256-CBC,
  HMAC-SHA256, digest) + ``decrypt_attachment``, MB/s of plaintext;
* ``aesgcm_bulk``: raw AES-256-GCM encrypt+decrypt of the same bytes, MB/s;
* ``cbc_hmac_raw``: raw AES-256-CBC + HMAC-SHA256 both ways on the same bytes (the attachment
  construction alone), to show what bounds the attachment figure.

Ratios are pocketscan / raw GCM. The machine is shared: each figure is the best of ``--repeat`` passes.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from research.timing import best_of

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = ["crypto_figures", "register", "run_bench"]


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench crypto``."""
    bench = registry.group("bench")
    parser = bench.command(
        "crypto", _handle,
        help="ratchet messages/s and attachment MB/s beside raw AES-256-GCM",
        description=__doc__,
    )
    parser.add_argument("--messages", type=int, default=2000,
                        help="messages per pass (default: %(default)s)")
    parser.add_argument("--message-size", type=int, default=200,
                        help="plaintext bytes per message (default: %(default)s)")
    parser.add_argument("--attachment-mb", type=float, default=8.0,
                        help="attachment size in MiB (default: %(default)s, about a 12 MP photo's JPEG x2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="passes; the best is kept (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")




Job = tuple[str, Callable[[], None]]


def _message_jobs(texts: list[bytes]) -> list[Job]:
    """Ratchet chain, ratchet ping-pong and raw AES-GCM over the same plaintexts."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from client.crypto.identity import IdentityKeyPair
    from client.crypto.x3dh import PreKeyState
    from client.session import SessionRecord, decrypt_message, initiate_session

    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    a_pk = PreKeyState.create(alice, 0.0, one_time_count=1)
    b_pk = PreKeyState.create(bob, 0.0, one_time_count=1)
    a_rec = initiate_session(alice, b_pk.bundle(bob.public, 1), account_id=bob.account_id)
    first = decrypt_message(bob, b_pk, None, a_rec.encrypt(b"hello"), sender_account_id=alice.account_id)
    b_rec: SessionRecord = first.record
    a_rec = decrypt_message(alice, a_pk, a_rec, b_rec.encrypt(b"hi"), sender_account_id=bob.account_id).record

    def chain() -> None:
        for t in texts:
            d = decrypt_message(bob, b_pk, b_rec, a_rec.encrypt(t), sender_account_id=alice.account_id)
            assert d.plaintext == t

    def pingpong() -> None:
        for i, t in enumerate(texts):
            if i % 2:
                decrypt_message(alice, a_pk, a_rec, b_rec.encrypt(t), sender_account_id=bob.account_id)
            else:
                decrypt_message(bob, b_pk, b_rec, a_rec.encrypt(t), sender_account_id=alice.account_id)

    gcm = AESGCM(AESGCM.generate_key(256))
    nonce = os.urandom(12)

    def gcm_msgs() -> None:
        for t in texts:
            gcm.decrypt(nonce, gcm.encrypt(nonce, t, b"ad"), b"ad")

    return [("ratchet_chain", chain), ("ratchet_pingpong", pingpong), ("aesgcm_msg", gcm_msgs)]


def _bulk_jobs(size: int) -> list[Job]:
    """The attachment recipe, raw AES-GCM and raw CBC+HMAC over the same ``size`` random bytes."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from client.crypto.attachments import decrypt_attachment, encrypt_image
    from scanner.verdict import issue_verdict

    blob_data = os.urandom(size)
    verdict = issue_verdict(blob_data, "skipped")
    gcm = AESGCM(AESGCM.generate_key(256))
    nonce = os.urandom(12)

    def attachment() -> None:
        enc = encrypt_image(blob_data, verdict, content_type="image/jpeg")
        assert len(decrypt_attachment(enc.blob, enc.pointer)) == size

    def gcm_bulk() -> None:
        gcm.decrypt(nonce, gcm.encrypt(nonce, blob_data, None), None)

    key, iv = os.urandom(32), os.urandom(16)

    def cbc_hmac_bulk() -> None:  # the same construction, raw: what bounds the attachment figure
        ct = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(blob_data)
        tag = hmac.digest(key, ct, "sha256")
        assert hmac.compare_digest(tag, hmac.digest(key, ct, "sha256"))
        Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(ct)

    return [("attachment", attachment), ("aesgcm_bulk", gcm_bulk), ("cbc_hmac_bulk", cbc_hmac_bulk)]


def crypto_figures(
    seconds: dict[str, float], messages: int, message_size: int, size: int
) -> dict[str, float]:
    """msgs/s, MB/s and the ratios to raw GCM from the best time of each job."""
    mb = size / 1e6
    out = {
        "ratchet_chain_msgs_per_s": messages / seconds["ratchet_chain"],
        "ratchet_pingpong_msgs_per_s": messages / seconds["ratchet_pingpong"],
        "aesgcm_msgs_per_s": messages / seconds["aesgcm_msg"],
        "attachment_mb_per_s": mb / seconds["attachment"],
        "aesgcm_mb_per_s": mb / seconds["aesgcm_bulk"],
        "cbc_hmac_raw_mb_per_s": mb / seconds["cbc_hmac_bulk"],
        "messages": float(messages),
        "message_size": float(message_size),
        "attachment_bytes": float(size),
    }
    out["ratchet_chain_vs_gcm"] = out["ratchet_chain_msgs_per_s"] / out["aesgcm_msgs_per_s"]
    out["ratchet_pingpong_vs_gcm"] = out["ratchet_pingpong_msgs_per_s"] / out["aesgcm_msgs_per_s"]
    out["attachment_vs_gcm"] = out["attachment_mb_per_s"] / out["aesgcm_mb_per_s"]
    return out


def run_bench(
    *, messages: int = 2000, message_size: int = 200, attachment_mb: float = 8.0, repeat: int = 3,
    progress: bool = True,
) -> dict[str, float]:
    """Run all measurements; return figures (msgs/s, MB/s) and ratios."""
    from scanner.progress import progress_bar

    size = int(attachment_mb * 1024 * 1024)
    jobs = _message_jobs([os.urandom(message_size) for _ in range(messages)]) + _bulk_jobs(size)
    seconds: dict[str, float] = {}
    with progress_bar("benchmarking crypto", len(jobs), quiet=not progress) as advance:
        for name, fn in jobs:
            seconds[name] = best_of(fn, repeat)
            advance()
    return crypto_figures(seconds, messages, message_size, size)


def _handle(args: argparse.Namespace) -> int:
    if args.messages < 2 or args.attachment_mb <= 0 or args.message_size < 0:
        print("error: --messages must be >= 2, --attachment-mb > 0, --message-size >= 0")
        return 2
    r = run_bench(messages=args.messages, message_size=args.message_size, attachment_mb=args.attachment_mb,
                  repeat=args.repeat, progress=not args.json)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"messages: {args.messages} x {args.message_size} B; "
          f"attachment: {r['attachment_bytes'] / 1e6:.1f} MB; best of {args.repeat}")
    print(f"{'measure':<34}{'pocketscan':>14}{'raw AES-GCM':>14}{'ratio':>9}")
    rows = [
        ("ratchet encrypt+decrypt (chain)", r["ratchet_chain_msgs_per_s"], r["aesgcm_msgs_per_s"], "msg/s"),
        ("ratchet encrypt+decrypt (DH step)", r["ratchet_pingpong_msgs_per_s"], r["aesgcm_msgs_per_s"],
         "msg/s"),
        ("attachment encrypt+decrypt", r["attachment_mb_per_s"], r["aesgcm_mb_per_s"], "MB/s"),
    ]
    for name, ours, ref, unit in rows:
        print(f"{name:<34}{ours:>10.0f} {unit:<5}{ref:>8.0f} {unit:<5}{ours / ref:>7.3f}")
    print(f"(raw AES-256-CBC + HMAC-SHA256, the attachment construction without padding, seam check or "
          f"digest: {r['cbc_hmac_raw_mb_per_s']:.0f} MB/s)")
    return 0
