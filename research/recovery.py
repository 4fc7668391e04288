"""Bank recovery from a snapshot file: enumerate every LSH key of every table, then stitch across tables.

The adversary holds only the snapshot (header + Bloom body). For an offline-keyed snapshot every table's
key space (``2^k`` keys) can be digested with the header's salt and tested against the filter: the keys that
are present are the sampled-bit patterns of the bank hashes, plus decoys (padding) and Bloom false
positives. Tables overlap in bit positions, so a constraint search keeps only the partial hashes whose
pattern is present in *every* table: real bank hashes satisfy all ``L`` tables (a Bloom filter has no false
negatives), random decoys and false positives do not.

* :func:`enumerate_table` digests all ``2^k`` keys of one table (hashlib in a tight loop; the membership test
  is one numpy pass over the filter) and returns the present patterns as bits.
* :func:`stitch` extends partial hashes table by table, always taking next the table that overlaps most with
  what is known, with a bound on the number of live partial hashes.
* :func:`recover` runs both under a time budget and, past the budget, extrapolates the core-hours of the
  full enumeration from the measured digest rate.

An OPRF-keyed snapshot (``docs/snapshot-format.md``) digests OPRF outputs, not keys: without the authority's
OPRF key the offline enumeration finds nothing but Bloom false positives (the attack still runs it, to
measure that); with an OPRF ``evaluate`` callable it pays one service evaluation per key, and stops when the
service refuses (rate limit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scanner.snapshot.bloom import present_many
from scanner.snapshot.format import HEADER_SIZE, Header
from scanner.snapshot.lsh import KeyDigester, pack_key_values, table_positions

__all__ = ["RecoveryResult", "StitchResult", "enumerate_table", "recover", "stitch", "table_keys"]

#: Live partial hashes above this make the stitching give up (ambiguous: a very large or padded bank).
DEFAULT_MAX_PARTIALS = 1_000_000
#: Keys per digest batch (bounds memory for large k).
_BATCH = 1 << 16
#: Partial hashes compared with one table's patterns at a time (bounds the comparison matrix).
_STITCH_BLOCK = 2048

#: Evaluates a batch of ``(table, key bytes)`` into digests (16 bytes each, concatenated); raises to stop.
KeyEvaluator = Callable[[int, np.ndarray], bytes]


def table_keys(bits: int, start: int, stop: int) -> np.ndarray:
    """Keys ``start..stop-1`` of a ``bits``-bit table, packed MSB first into ``ceil(bits/8)`` bytes each."""
    return pack_key_values(np.arange(start, stop, dtype=np.uint64), bits)


def enumerate_table(
    header: Header,
    body: np.ndarray,
    table: int,
    evaluate: KeyEvaluator,
    *,
    deadline: float | None = None,
) -> tuple[np.ndarray | None, int]:
    """Present patterns of one table as ``(n, k)`` bits, and the digests computed.

    Returns ``(None, digests)`` when ``deadline`` (a ``time.perf_counter`` value) passed before the table
    was done.
    """
    k = header.bits
    total = 1 << k
    found: list[np.ndarray] = []
    done = 0
    for start in range(0, total, _BATCH):
        if deadline is not None and time.perf_counter() > deadline:
            return None, done
        stop = min(total, start + _BATCH)
        keys = table_keys(k, start, stop)
        digests = evaluate(table, keys)
        done += stop - start
        hit = present_many(body, digests, header.bloom_bits, header.bloom_hashes)
        if hit.any():
            found.append(np.flatnonzero(hit).astype(np.uint64) + np.uint64(start))
    values = np.concatenate(found) if found else np.zeros(0, dtype=np.uint64)
    shifts = np.arange(k - 1, -1, -1, dtype=np.uint64)
    patterns = ((values[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.int8)
    return patterns, done


@dataclass
class StitchResult:
    """Candidates of the constraint search.

    Attributes:
        candidates: ``(n, hash_bits)`` int8, 0/1 where some table sampled the bit, -1 where none did.
        ambiguous: True when the live partial hashes exceeded the bound (the search stopped early).
        peak_partials: the largest number of live partial hashes.
        tables_used: tables whose constraint was applied.
    """

    candidates: np.ndarray
    ambiguous: bool
    peak_partials: int
    tables_used: int


def stitch(
    positions: np.ndarray,
    patterns: dict[int, np.ndarray],
    hash_bits: int,
    *,
    max_partials: int = DEFAULT_MAX_PARTIALS,
) -> StitchResult:
    """Hashes consistent with a present pattern in every table of ``patterns`` (table -> (n, k) bits)."""
    tables = [t for t in patterns if patterns[t].shape[0] > 0]
    if not tables or len(tables) < len(patterns):
        # A table without any present pattern: no bank hash can exist (every hash sets a key in every table).
        return StitchResult(np.zeros((0, hash_bits), np.int8), False, 0, len(patterns) - len(tables))
    known = np.zeros(hash_bits, dtype=bool)
    remaining = set(tables)
    # Start from the pair of tables that share the most positions: their joint candidates are fewest.
    member = np.zeros((len(tables), hash_bits), dtype=np.int32)
    for i, t in enumerate(tables):
        member[i, positions[t]] = 1
    overlap = member @ member.T
    np.fill_diagonal(overlap, -1)
    i, _ = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
    first = tables[int(i)]
    remaining.discard(first)
    partials = np.full((patterns[first].shape[0], hash_bits), -1, dtype=np.int8)
    partials[:, positions[first]] = patterns[first]
    known[positions[first]] = True
    peak = partials.shape[0]
    used = 1
    while remaining:
        # Next: the table with most already-known positions (fewest new branches); ties by fewer patterns.
        nxt = max(remaining, key=lambda t: (int(known[positions[t]].sum()), -patterns[t].shape[0], -t))
        remaining.discard(nxt)
        pos = positions[nxt]
        pats = patterns[nxt].astype(np.int32) * 2 - 1  # (m, k) in {-1, +1}
        part = partials[:, pos].astype(np.int32)  # (n, k) in {-1, 0, 1}
        signed = np.where(part < 0, 0, part * 2 - 1)  # unknown -> 0
        need = np.abs(signed).sum(axis=1)
        hits_p: list[np.ndarray] = []
        hits_m: list[np.ndarray] = []
        for s in range(0, signed.shape[0], _STITCH_BLOCK):
            # +1 per agreeing known bit, -1 per disagreeing: compatible when every known bit agrees.
            agree = signed[s : s + _STITCH_BLOCK] @ pats.T
            bi, bm = np.nonzero(agree == need[s : s + _STITCH_BLOCK, None])
            hits_p.append(bi + s)
            hits_m.append(bm)
        pi = np.concatenate(hits_p)
        mi = np.concatenate(hits_m)
        if pi.size > max_partials:
            return StitchResult(partials, True, max(peak, int(pi.size)), used)
        merged = partials[pi].copy()
        merged[:, pos] = patterns[nxt][mi]
        partials = merged  # distinct partials extended by distinct patterns stay distinct
        known[pos] = True
        used += 1
        peak = max(peak, partials.shape[0])
        if partials.shape[0] == 0:
            break
    return StitchResult(partials, False, peak, used)


@dataclass
class RecoveryResult:
    """What the attack found and what it cost (``results.json`` of ``research attacks recover``)."""

    recovered: int
    digests: int
    seconds: float
    enumeration_seconds: float
    stitch_seconds: float
    total_digests: int
    digest_rate: float
    extrapolated_core_hours: float
    completed: bool
    ambiguous: bool
    peak_partials: int
    tables_enumerated: int
    patterns_per_table: list[int]
    candidates: list[bytes] = field(default_factory=list)
    uncovered_bits: int = 0
    stopped_reason: str = ""


def _offline_evaluator(header: Header) -> KeyEvaluator:
    digester = KeyDigester(header.salt, header.tables)

    def evaluate(table: int, keys: np.ndarray) -> bytes:
        return digester.digest_many(table, keys)

    return evaluate


def recover(
    data: bytes,
    *,
    budget_seconds: float = 600.0,
    evaluate: KeyEvaluator | None = None,
    max_partials: int = DEFAULT_MAX_PARTIALS,
    progress: Callable[[int, int], None] | None = None,
) -> RecoveryResult:
    """Enumerate and stitch ``data`` (a snapshot file's bytes) within ``budget_seconds`` of enumeration.

    ``evaluate`` digests a table's keys (default: the offline BLAKE2b digest of the header's salt). When the
    budget runs out, enumeration stops and the full cost is extrapolated from the measured rate; an
    exception raised by ``evaluate`` (a refusing OPRF service) also stops it and is reported.
    """
    header = Header.unpack(data[:HEADER_SIZE])
    if len(data) < header.file_size:
        raise ValueError("truncated snapshot")
    body = np.frombuffer(data, dtype=np.uint8, count=header.body_length, offset=HEADER_SIZE)
    positions = table_positions(header.seed, header.tables, header.bits, header.hash_bits)
    evaluate = evaluate or _offline_evaluator(header)
    total = header.tables * (1 << header.bits)
    started = time.perf_counter()
    deadline = started + budget_seconds
    patterns: dict[int, np.ndarray] = {}
    digests = 0
    stopped = ""
    for t in range(header.tables):
        try:
            found, done = enumerate_table(header, body, t, evaluate, deadline=deadline)
        except Exception as exc:  # a refusing service: stop and report why
            stopped = f"stopped at table {t}: {exc}"
            break
        digests += done
        if progress is not None:
            progress(digests, total)
        if found is None:
            stopped = f"budget of {budget_seconds:g} s reached at table {t} of {header.tables}"
            break
        patterns[t] = found
    enum_s = time.perf_counter() - started
    rate = digests / enum_s if enum_s > 0 else 0.0
    completed = len(patterns) == header.tables
    extrapolated = (total / rate / 3600.0) if rate > 0 else math.inf
    t1 = time.perf_counter()
    candidates: list[bytes] = []
    ambiguous = False
    peak = 0
    uncovered = 0
    if completed:
        res = stitch(positions, patterns, header.hash_bits, max_partials=max_partials)
        ambiguous, peak = res.ambiguous, res.peak_partials
        if not ambiguous:
            cand = res.candidates
            uncovered = int((cand[0] < 0).sum()) if cand.shape[0] else 0
            bits = np.where(cand < 0, 0, cand).astype(np.uint8)
            candidates = [bytes(row) for row in np.packbits(bits, axis=1, bitorder="big")]
    stitch_s = time.perf_counter() - t1
    return RecoveryResult(
        recovered=len(candidates),
        digests=digests,
        seconds=round(enum_s + stitch_s, 3),
        enumeration_seconds=round(enum_s, 3),
        stitch_seconds=round(stitch_s, 3),
        total_digests=total,
        digest_rate=rate,
        extrapolated_core_hours=extrapolated,
        completed=completed,
        ambiguous=ambiguous,
        peak_partials=peak,
        tables_enumerated=len(patterns),
        patterns_per_table=[int(patterns[t].shape[0]) for t in sorted(patterns)],
        candidates=candidates,
        uncovered_bits=uncovered,
        stopped_reason=stopped,
    )
