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

__all__ = [
    "RecoveryResult",
    "StitchResult",
    "candidate_hashes",
    "enumerate_table",
    "recover",
    "stitch",
    "table_keys",
]

#: Live partial hashes above this make the stitching give up (ambiguous: a very large or padded bank).
DEFAULT_MAX_PARTIALS = 1_000_000
#: Keys per digest batch (bounds memory for large k).
_BATCH = 1 << 16

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
        ambiguous: True when the search exceeded its work budget (candidates are then incomplete).
        peak_partials: the largest number of partial hashes alive at one depth (summed over chunks).
        tables_used: tables in the search order.
        extensions: partial hashes created in all (the search's work).
    """

    candidates: np.ndarray
    ambiguous: bool
    peak_partials: int
    tables_used: int
    extensions: int = 0


def _search_order(positions: np.ndarray, tables: list[int], patterns: dict[int, np.ndarray]) -> list[int]:
    """Tables in the order the search applies them: the most-overlapping pair first, then always the table
    sharing most positions with those already known (its patterns branch least)."""
    hash_bits = int(positions.max()) + 1
    member = np.zeros((len(tables), hash_bits), dtype=np.int32)
    for i, t in enumerate(tables):
        member[i, positions[t]] = 1
    overlap = member @ member.T
    np.fill_diagonal(overlap, -1)
    first = int(np.unravel_index(int(np.argmax(overlap)), overlap.shape)[0])
    order = [tables[first]]
    known = member[first].astype(bool)
    remaining = set(tables) - {order[0]}
    while remaining:
        nxt = max(remaining, key=lambda t: (int(known[positions[t]].sum()), -patterns[t].shape[0], -t))
        remaining.discard(nxt)
        order.append(nxt)
        known[positions[nxt]] = True
    return order


def _codes(bits: np.ndarray) -> np.ndarray:
    """Rows of 0/1 bits (at most 63 columns) as integers."""
    weights = (1 << np.arange(bits.shape[1] - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    return bits.astype(np.int64) @ weights


JoinStep = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""One depth of the join: (the table's positions, which of them are already known, its patterns' codes on
the known positions, sorted, and its patterns in that order)."""


def _join_steps(
    order: list[int], positions: np.ndarray, patterns: dict[int, np.ndarray], hash_bits: int
) -> list[JoinStep]:
    """Per depth of ``order``: which of the table's positions are already known, and its patterns sorted by
    their code on those positions."""
    known = np.zeros(hash_bits, dtype=bool)
    steps = []
    for t in order:
        pos = positions[t]
        old = known[pos]
        pats = patterns[t]
        codes = _codes(pats[:, old]) if old.any() else np.zeros(pats.shape[0], np.int64)
        sort = np.argsort(codes, kind="stable")
        steps.append((pos, old, codes[sort], pats[sort]))
        known[pos] = True
    return steps


def _matching_ranges(partials: np.ndarray, step: JoinStep) -> tuple[np.ndarray, np.ndarray]:
    """(first index, count) per partial hash of the step's sorted patterns that agree with it."""
    pos, old, sorted_codes, _ = step
    if old.any():
        query = _codes(partials[:, pos[old]])
        lo = np.searchsorted(sorted_codes, query, side="left")
        hi = np.searchsorted(sorted_codes, query, side="right")
    else:
        lo = np.zeros(partials.shape[0], np.int64)
        hi = np.full(partials.shape[0], sorted_codes.shape[0], np.int64)
    return lo, hi - lo


def _extend(
    partials: np.ndarray, step: JoinStep, lo: np.ndarray, counts: np.ndarray, max_partials: int
) -> list[np.ndarray]:
    """The children of ``partials`` (each extended by every agreeing pattern), in batches of at most
    ``max_partials`` rows (a parent with more children makes one larger batch)."""
    pos, _, _, sorted_pats = step
    out = []
    cum = np.cumsum(counts)
    cut = 0
    while cut < partials.shape[0]:
        base = int(cum[cut - 1]) if cut else 0
        end = int(np.searchsorted(cum, base + max_partials, side="right"))
        end = max(end, cut + 1)
        parent = np.repeat(np.arange(cut, end), counts[cut:end])
        offsets = np.arange(parent.shape[0]) - np.repeat(
            (np.cumsum(counts[cut:end]) - counts[cut:end]), counts[cut:end]
        )
        chosen = lo[parent] + offsets
        child = partials[parent].copy()
        child[:, pos] = sorted_pats[chosen]
        if child.shape[0]:
            out.append(child)
        cut = end
    return out


def stitch(
    positions: np.ndarray,
    patterns: dict[int, np.ndarray],
    hash_bits: int,
    *,
    max_partials: int = DEFAULT_MAX_PARTIALS,
    max_extensions: int = 2_000_000_000,
    deadline: float | None = None,
) -> StitchResult:
    """Hashes consistent with a present pattern in every table of ``patterns`` (table -> (n, k) bits).

    A depth-first join: at each depth every live partial hash is extended by the next table's patterns that
    agree with it on the positions already known (a sorted-code join, no pairwise comparison); batches
    larger than ``max_partials`` are split, so memory stays bounded by depth x ``max_partials`` rows while
    the total work (``max_extensions`` partial hashes) and ``deadline`` (a ``time.perf_counter`` value) bound
    the time; past either the result is marked ambiguous.
    """
    tables = [t for t in patterns if patterns[t].shape[0] > 0]
    if not tables or len(tables) < len(patterns):
        # A table without any present pattern: no bank hash can exist (every hash sets a key in every table).
        return StitchResult(np.zeros((0, hash_bits), np.int8), False, 0, len(patterns) - len(tables))
    order = _search_order(positions, tables, patterns)
    steps = _join_steps(order, positions, patterns, hash_bits)
    peaks = np.zeros(len(order) + 1, dtype=np.int64)
    found: list[np.ndarray] = []
    work = 0
    stack: list[tuple[int, np.ndarray]] = []
    first_pos, _, _, first_pats = steps[0]
    root = np.full((first_pats.shape[0], hash_bits), -1, dtype=np.int8)
    root[:, first_pos] = first_pats
    for s in range(0, root.shape[0], max_partials):
        stack.append((1, root[s : s + max_partials]))
    peaks[1] = root.shape[0]
    ambiguous = False
    while stack:
        depth, partials = stack.pop()
        if depth == len(steps):
            found.append(partials)
            continue
        lo, counts = _matching_ranges(partials, steps[depth])
        total = int(counts.sum())
        work += total
        if work > max_extensions or (deadline is not None and time.perf_counter() > deadline):
            ambiguous = True
            break
        if total == 0:
            continue
        peaks[depth + 1] += total
        children = _extend(partials, steps[depth], lo, counts, max_partials)
        stack.extend((depth + 1, child) for child in children)
    candidates = np.concatenate(found) if found else np.zeros((0, hash_bits), np.int8)
    return StitchResult(candidates, ambiguous, int(peaks.max()), len(order), work)


@dataclass
class RecoveryResult:
    """What the attack found and what it cost (``results.json`` of ``research attacks recover``)."""

    recovered: int
    digests: int
    seconds: float
    enumeration_seconds: float
    enumeration_cpu_seconds: float
    stitch_extensions: int
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


def _enumerate_all(
    header: Header,
    body: np.ndarray,
    evaluate: KeyEvaluator,
    *,
    deadline: float,
    budget_seconds: float,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[int, np.ndarray], int, str]:
    """Enumerate the tables in order until done, the deadline or a refusal: (present patterns per table
    enumerated, digests computed, why it stopped early or "")."""
    patterns: dict[int, np.ndarray] = {}
    digests = 0
    total = header.tables * (1 << header.bits)
    for t in range(header.tables):
        try:
            found, done = enumerate_table(header, body, t, evaluate, deadline=deadline)
        except Exception as exc:  # a refusing service: stop and report why
            return patterns, digests, f"stopped at table {t}: {exc}"
        digests += done
        if progress is not None:
            progress(digests, total)
        if found is None:
            return (
                patterns,
                digests,
                f"budget of {budget_seconds:g} s reached at table {t} of {header.tables}",
            )
        patterns[t] = found
    return patterns, digests, ""


def candidate_hashes(candidates: np.ndarray) -> tuple[list[bytes], int]:
    """Stitched candidates (0/1, -1 where no table sampled the bit) as hash bytes, unsampled bits 0; and
    the number of unsampled bit positions."""
    uncovered = int((candidates[0] < 0).sum()) if candidates.shape[0] else 0
    bits = np.where(candidates < 0, 0, candidates).astype(np.uint8)
    return [bytes(row) for row in np.packbits(bits, axis=1, bitorder="big")], uncovered


def _stitch_all(
    positions: np.ndarray,
    patterns: dict[int, np.ndarray],
    header: Header,
    completed: bool,
    max_partials: int,
    budget_seconds: float,
) -> tuple[StitchResult, list[bytes], int]:
    """Stitch a completed enumeration within ``budget_seconds``: (the search's result, candidate hashes,
    unsampled bit positions); nothing when the enumeration did not complete or the search was ambiguous."""
    found = StitchResult(np.zeros((0, header.hash_bits), np.int8), False, 0, 0)
    if not completed:
        return found, [], 0
    found = stitch(
        positions,
        patterns,
        header.hash_bits,
        max_partials=max_partials,
        deadline=time.perf_counter() + budget_seconds,
    )
    if found.ambiguous:
        return found, [], 0
    candidates, uncovered = candidate_hashes(found.candidates)
    return found, candidates, uncovered


def recover(
    data: bytes,
    *,
    budget_seconds: float = 600.0,
    evaluate: KeyEvaluator | None = None,
    max_partials: int = DEFAULT_MAX_PARTIALS,
    progress: Callable[[int, int], None] | None = None,
) -> RecoveryResult:
    """Enumerate and stitch ``data`` (a snapshot file's bytes): ``budget_seconds`` for the enumeration and as
    much again for the stitching.

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
    cpu_started = time.process_time()
    patterns, digests, stopped = _enumerate_all(
        header,
        body,
        evaluate,
        deadline=started + budget_seconds,
        budget_seconds=budget_seconds,
        progress=progress,
    )
    enum_s = time.perf_counter() - started
    enum_cpu = time.process_time() - cpu_started
    # Core-hours come from CPU time: on a shared machine wall time also counts other people's work.
    rate = digests / enum_cpu if enum_cpu > 0 else 0.0
    completed = len(patterns) == header.tables
    extrapolated = (total / rate / 3600.0) if rate > 0 else math.inf
    t1 = time.perf_counter()
    stitched = _stitch_all(positions, patterns, header, completed, max_partials, budget_seconds)
    found, candidates, uncovered = stitched
    stitch_s = time.perf_counter() - t1
    return RecoveryResult(
        recovered=len(candidates),
        digests=digests,
        seconds=round(enum_s + stitch_s, 3),
        enumeration_seconds=round(enum_s, 3),
        enumeration_cpu_seconds=round(enum_cpu, 3),
        stitch_extensions=found.extensions,
        stitch_seconds=round(stitch_s, 3),
        total_digests=total,
        digest_rate=rate,
        extrapolated_core_hours=extrapolated,
        completed=completed,
        ambiguous=found.ambiguous,
        peak_partials=found.peak_partials,
        tables_enumerated=len(patterns),
        patterns_per_table=[int(patterns[t].shape[0]) for t in sorted(patterns)],
        candidates=candidates,
        uncovered_bits=uncovered,
        stopped_reason=stopped,
    )
