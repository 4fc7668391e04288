"""Build a signed snapshot from bank hashes (authority side).

Hashes are deduplicated, unpacked to bits in chunks, keyed per table, digested with the salt and written into
the Bloom body by :class:`~scanner.snapshot.bloom.BloomWriter`. Only digests of sampled-bit keys reach the
file:
no raw bank hash is stored. Large banks are split by table across worker processes (fork), each writing its
own filter into shared memory; the bodies are OR-ed, which gives the same bits as one process.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import os
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scanner.authority import AuthorityKey
from scanner.calibration import Params, rounded_entry_count
from scanner.errors import CalibrationError
from scanner.oprf import OprfDigester, OprfKey
from scanner.snapshot.bloom import BloomWriter
from scanner.snapshot.format import SIGNING_CONTEXT, Header
from scanner.snapshot.lsh import KeyDigester, hash_bits_matrix, key_values, pack_key_values, table_positions

__all__ = ["build_snapshot", "pack_bank_hashes"]

_CHUNK = 8192
#: Below this many keys a build stays in one process.
_PARALLEL_MIN_KEYS = 2_000_000


def pack_bank_hashes(hashes: Sequence[bytes] | np.ndarray, hash_bits: int = 256) -> np.ndarray:
    """Pack and deduplicate hashes into an ``(N, hash_bits / 8)`` uint8 array."""
    width = hash_bits // 8
    if isinstance(hashes, np.ndarray):
        arr = np.ascontiguousarray(hashes, dtype=np.uint8)
    else:
        if any(len(h) != width for h in hashes):
            raise ValueError(f"every hash must be {width} bytes")
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8)
    arr = arr.reshape(-1, width)
    if arr.shape[0] == 0:
        return arr
    return np.unique(arr, axis=0)


def decoy_keys(real: np.ndarray, bits: int, target: int, rng: np.random.Generator) -> np.ndarray:
    """Random ``bits``-bit keys, distinct from each other and from the rows of ``real``, that bring the table
    to ``target`` distinct keys (or all ``2^bits`` when fewer exist)."""
    have = np.unique(key_values(real, bits)) if real.shape[0] else np.zeros(0, np.uint64)
    want = min(target, 1 << bits) - have.shape[0]
    chosen = np.zeros(0, dtype=np.uint64)
    while chosen.shape[0] < want:
        draw = rng.integers(0, 1 << bits, size=2 * (want - chosen.shape[0]) + 16, dtype=np.uint64)
        fresh = np.setdiff1d(np.unique(draw), np.concatenate([have, chosen]), assume_unique=True)
        rng.shuffle(fresh)
        chosen = np.concatenate([chosen, fresh[: want - chosen.shape[0]]])
    return pack_key_values(chosen, bits)


def _refuse_saturating_padding(params: Params, pad_to: int) -> None:
    """Refuse parameters under which the decoys alone would make a random image match.

    Padding puts ``pad_to`` keys in every table; a query probing ``p`` keys per table then hits a table by
    chance with probability about ``p * pad_to / 2**bits``. When the expected chance hits over all tables
    reach the needed votes, about half of all images or more would match: that happens when the
    parameters were calibrated for the real bank size instead of the padded count.
    """
    if not pad_to:
        return
    probes = 1 + (params.bits if params.probe_radius else 0)
    chance_votes = params.tables * min(1.0, probes * pad_to / 2**params.bits)
    if chance_votes >= params.min_votes:
        raise CalibrationError(
            f"parameters L={params.tables}, k={params.bits}, v={params.min_votes} are too coarse for a "
            f"padded snapshot of {pad_to} keys per table ({chance_votes:.1f} chance votes per image): "
            "calibrate for the padded count (scanner.calibration.calibrate_padded) or build without padding"
        )


def _pad(
    writer: BloomWriter,
    packed: np.ndarray,
    positions: np.ndarray,
    digester: KeyDigester | OprfDigester,
    tables: Sequence[int],
    target: int,
    decoy_seed: bytes,
) -> None:
    """Insert decoy keys so that every table holds exactly ``target`` distinct keys (the rounded count)."""
    for t in tables:
        real = np.zeros((0, (positions.shape[1] + 7) // 8), np.uint8)
        parts = []
        for start in range(0, packed.shape[0], _CHUNK):
            bits = hash_bits_matrix(packed[start : start + _CHUNK])
            parts.append(np.packbits(bits[:, positions[t]], axis=1, bitorder="big"))
        if parts:
            real = np.concatenate(parts)
        seed = int.from_bytes(hashlib.blake2b(struct.pack(">I", t), key=decoy_seed, digest_size=16).digest())
        decoys = decoy_keys(real, positions.shape[1], target, np.random.default_rng(seed))
        if decoys.shape[0]:
            writer.add_digests(digester.digest_many(t, decoys))


def _fill(
    writer: BloomWriter,
    packed: np.ndarray,
    positions: np.ndarray,
    digester: KeyDigester | OprfDigester,
    tables: Sequence[int],
    tick: Callable[[int], None],
    pad_to: int = 0,
    decoy_seed: bytes = b"",
) -> None:
    if pad_to:
        _pad(writer, packed, positions, digester, tables, pad_to, decoy_seed)
    for start in range(0, packed.shape[0], _CHUNK):
        bits = hash_bits_matrix(packed[start : start + _CHUNK])
        batch: list[bytes] = []
        for t in tables:
            keys = np.packbits(bits[:, positions[t]], axis=1, bitorder="big")
            batch.append(digester.digest_many(t, keys))
            tick(keys.shape[0])
        writer.add_digests(b"".join(batch))


_JOB: dict[str, Any] = {}


def _digester(salt: bytes, tables: int, oprf_key: OprfKey | None) -> KeyDigester | OprfDigester:
    return KeyDigester(salt, tables) if oprf_key is None else OprfDigester(salt, tables, oprf_key)


def _worker(index: int) -> None:  # runs in a forked child
    job = _JOB
    params: Params = job["params"]
    writer = BloomWriter(params.bloom_bits, params.bloom_hashes)
    counter = job["counters"][index]

    def tick(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    _fill(
        writer,
        job["packed"],
        job["positions"],
        _digester(job["salt"], params.tables, job["oprf_key"]),
        job["splits"][index],
        tick,
        job["pad_to"],
        job["decoy_seed"],
    )
    job["regions"][index][:] = writer.body()


def _parallel_body(
    packed: np.ndarray,
    positions: np.ndarray,
    salt: bytes,
    params: Params,
    workers: int,
    progress: Callable[[int, int], None] | None,
    pad_to: int,
    decoy_seed: bytes,
    oprf_key: OprfKey | None,
) -> bytes:
    ctx = multiprocessing.get_context("fork")
    nbytes = params.bloom_bits // 8
    splits = [list(range(i, params.tables, workers)) for i in range(workers)]
    regions = [mmap.mmap(-1, nbytes) for _ in range(workers)]
    counters = [ctx.Value("q", 0) for _ in range(workers)]
    _JOB.update(
        params=params,
        packed=packed,
        positions=positions,
        salt=salt,
        splits=splits,
        regions=regions,
        counters=counters,
        pad_to=pad_to,
        decoy_seed=decoy_seed,
        oprf_key=oprf_key,
    )
    total = packed.shape[0] * params.tables
    try:
        procs = [ctx.Process(target=_worker, args=(i,), daemon=True) for i in range(workers)]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            if progress is not None:
                progress(sum(int(c.value) for c in counters), total)
            time.sleep(0.2)
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError("a snapshot build worker failed")
        body = np.frombuffer(regions[0], dtype=np.uint8).copy()
        for region in regions[1:]:
            body |= np.frombuffer(region, dtype=np.uint8)
        if progress is not None:
            progress(total, total)
        return body.tobytes()
    finally:
        _JOB.clear()
        for region in regions:
            region.close()


def _bloom_body(
    packed: np.ndarray,
    positions: np.ndarray,
    salt: bytes,
    params: Params,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    pad_to: int,
    decoy_seed: bytes,
    oprf_key: OprfKey | None,
) -> bytes:
    """The Bloom body: split across forked workers for large banks, in this process otherwise; reports
    (keys done, keys total) to ``progress``."""
    total = packed.shape[0] * params.tables
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers > 1 and total >= _PARALLEL_MIN_KEYS and "fork" in multiprocessing.get_all_start_methods():
        return _parallel_body(
            packed, positions, salt, params, min(workers, params.tables), progress, pad_to, decoy_seed,
            oprf_key,
        )
    writer = BloomWriter(params.bloom_bits, params.bloom_hashes)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    _fill(
        writer, packed, positions, _digester(salt, params.tables, oprf_key), range(params.tables), tick,
        pad_to, decoy_seed,
    )
    return writer.body()


def _signed_file(
    body: bytes,
    *,
    params: Params,
    key: AuthorityKey,
    version: int,
    created: int,
    expires: int,
    algorithm: str,
    entry_count: int,
    seed: bytes,
    salt: bytes,
    oprf_key: OprfKey | None,
) -> bytes:
    """Header, ``body`` and the authority's signature over the header, as one snapshot file."""
    header = Header(
        snapshot_version=version, created=created, expires=expires, algorithm=algorithm,
        hash_bits=params.hash_bits, tables=params.tables, bits=params.bits, min_votes=params.min_votes,
        probe_radius=params.probe_radius, bloom_bits=params.bloom_bits, bloom_hashes=params.bloom_hashes,
        entry_count=entry_count, key_id=key.key_id, seed=seed, salt=salt,
        body_length=len(body), body_sha256=hashlib.sha256(body).digest(),
        oprf_public_key=oprf_key.public_key if oprf_key is not None else b"",
    ).pack()
    signature = key.sign(SIGNING_CONTEXT + header)
    return header + body + signature


def build_snapshot(
    hashes: Sequence[bytes] | np.ndarray,
    *,
    params: Params,
    key: AuthorityKey,
    version: int,
    created: int,
    expires: int,
    algorithm: str = "pdq",
    seed: bytes | None = None,
    salt: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    pad: bool = True,
    decoy_seed: bytes | None = None,
    oprf_key: OprfKey | None = None,
) -> bytes:
    """The bytes of a signed snapshot of ``hashes`` (already filtered: quality >= 50, not expired).

    Args:
        hashes: bank hashes, ``hash_bits / 8`` bytes each (a sequence or an ``(N, nbytes)`` uint8 array).
        params: matching parameters (usually from :func:`scanner.calibration.calibrate`).
        key: the authority signing key.
        version: snapshot version (devices refuse lower versions than they accepted).
        created: creation time, Unix seconds.
        expires: expiry time, Unix seconds.
        algorithm: hash algorithm name.
        seed: 32-byte position seed (random when omitted).
        salt: 32-byte digest key (random when omitted).
        progress: called with (keys done, keys total).
        workers: processes for large banks (default: up to 2, the CPU count; 1 disables forking).
        pad: insert random decoy keys so that every table holds exactly the rounded entry count of distinct
            keys (the fill ratio and the per-table key counts then reveal only the rounded count).
        decoy_seed: 32 secret bytes the decoys are drawn from (random when omitted; never derived from
            anything in the file, or an adversary could regenerate and remove the decoys).
        oprf_key: build an OPRF-keyed snapshot: the authority's OPRF key (``scanner.oprf.OprfKey``); every
            key is replaced by its OPRF output before the salted digest, and the header commits to the OPRF
            public key.
    """
    decoy_seed = os.urandom(32) if decoy_seed is None else decoy_seed
    seed = os.urandom(32) if seed is None else seed
    salt = os.urandom(32) if salt is None else salt
    packed = pack_bank_hashes(hashes, params.hash_bits)
    positions = table_positions(seed, params.tables, params.bits, params.hash_bits)
    pad_to = rounded_entry_count(packed.shape[0]) if pad else 0
    _refuse_saturating_padding(params, pad_to)
    body = _bloom_body(packed, positions, salt, params, workers, progress, pad_to, decoy_seed, oprf_key)
    return _signed_file(
        body, params=params, key=key, version=version, created=created, expires=expires, algorithm=algorithm,
        entry_count=rounded_entry_count(packed.shape[0]), seed=seed, salt=salt, oprf_key=oprf_key,
    )
