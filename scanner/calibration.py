"""Calibration: the arithmetic of near-duplicate matching through a Bloom filter.

The model (written out with its derivation in ``docs/matching.md``):

* Table ``t`` samples ``k`` distinct bit positions of a ``b``-bit hash (``b = 256`` for PDQ). A query at
  Hamming
  distance ``d`` from a bank hash hits that table with probability ``q(d) = C(b-d, k) / C(b, k)``; with a
  multi-probe radius of 1 (the query also probes its ``k`` one-bit neighbours) the table hits when at most one
  sampled bit differs: ``q1(d) = [C(b-d, k) + d * C(b-d, k-1)] / C(b, k)``.
* Averaged over the random positions of a snapshot, tables are independent given ``d``, so the votes of a true
  pair follow ``Binomial(L, 1 - (1 - q(d)) (1 - r))`` where ``r`` is the per-table noise below.
* Noise per table: a random bank entry sets the probed key with probability ``P * 2^-k`` (``P = 1`` or ``k
  + 1``
  probes), so ``r_bank = 1 - (1 - P 2^-k)^N``; the Bloom filter adds ``r_bloom = 1 - (1 - p)^P`` with
  ``p = (1 - exp(-h n / m))^h`` for ``n`` keys, ``m`` bits and ``h`` probes per key. ``r = 1 - (1 -
  r_bank)(1 - r_bloom)``.
* An unrelated hash is a false match when ``Binomial(L, r) >= v``; with the 8 dihedral variants the
  per-image rate
  is ``1 - (1 - F)^8``.

:func:`calibrate` searches ``k``, ``L``, ``v``, the probe radius and the Bloom rate under three budgets:
false matches per image (dihedral on), snapshot size, and Bloom lookups per variant (which bound the
matching time). It keeps a predicted recall of 0.999 at the target distance when the budgets allow (small
banks) and puts the curve's soft edge above it; otherwise it fits the curve to the step. Pure arithmetic
(``math``, numpy and scipy's binomial and beta functions); no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from scanner.calibration_defaults import DEFAULT_MAX_LOOKUPS, DEFAULT_MIN_KEY_BITS, DEFAULT_RECALL_FLOOR
from scanner.errors import CalibrationError
from scanner.hashers.spec import PDQ

__all__ = [
    "DEFAULT_FALSE_MATCH_BUDGET",
    "DEFAULT_MAX_LOOKUPS",
    "DEFAULT_MIN_KEY_BITS",
    "DEFAULT_RECALL_FLOOR",
    "DEFAULT_TARGET_DISTANCE",
    "DIHEDRAL_VARIANTS",
    "Calibration",
    "CalibrationError",
    "Params",
    "binomial_tail",
    "blocked_bloom_fpr",
    "bloom_geometry",
    "calibrate",
    "calibrate_padded",
    "default_max_size_bytes",
    "max_noise",
    "predict",
    "rounded_entry_count",
    "table_hit_probability",
]

#: Default budget of predicted false matches per image, with the 8 dihedral variants probed.
DEFAULT_FALSE_MATCH_BUDGET = 1e-4
#: PDQ's recommended match threshold: the default step the calibration approximates.
DEFAULT_TARGET_DISTANCE = PDQ.match_distance
#: Table counts up to this are all tried; above it the search steps by about 12 %.
DENSE_TABLES = 160
#: The search tries the Bloom false-positive rate the noise budget allows, then 10, 100 and 1000 times lower,
#: and keeps the lowest that fits the size budget.
_BLOOM_SHRINK = (1e-3, 1e-2, 1e-1, 1.0)
#: Minimum votes 1..this are tried for every table count (beside the larger value the recall floor allows).
DEFAULT_MAX_VOTES = 6
#: Recall floor: when reachable, the search only keeps parameters recalling this much at this distance.
FLOOR_DISTANCE = 16
FLOOR_RECALL = 0.95
#: Number of dihedral variants (rotations and flips) a query may probe.
DIHEDRAL_VARIANTS = 8
#: Bytes of the snapshot outside the Bloom body (header + signature), see docs/snapshot-format.md.
OVERHEAD_BYTES = 256 + 64
#: Bits per block of the blocked Bloom filter (all probes of one key fall in one 64-byte block).
BLOCK_BITS = 512
#: Largest number of Bloom probes per key.
MAX_BLOOM_HASHES = 32
#: Entry counts are rounded up to a multiple of this before they are written or used to size the filter.
ENTRY_ROUNDING = 1024


@dataclass(frozen=True)
class Params:
    """Snapshot matching parameters.

    Attributes:
        tables: L, the number of LSH tables.
        bits: k, sampled bit positions per table.
        min_votes: v, tables that must hit for a match.
        probe_radius: 0 (exact key) or 1 (also the k one-bit neighbours of the query key).
        bloom_bits: m, bits of the Bloom filter.
        bloom_hashes: h, probes per key in the Bloom filter.
        hash_bits: width of the hashes (256 for PDQ).
    """

    tables: int
    bits: int
    min_votes: int
    probe_radius: int
    bloom_bits: int
    bloom_hashes: int
    hash_bits: int = 256

    def build_options(self) -> dict[str, int]:
        """The six parameters a snapshot is built with, by name (``hash_bits`` comes from the bank)."""
        return {
            "tables": self.tables,
            "bits": self.bits,
            "min_votes": self.min_votes,
            "probe_radius": self.probe_radius,
            "bloom_bits": self.bloom_bits,
            "bloom_hashes": self.bloom_hashes,
        }

    @property
    def probes_per_table(self) -> int:
        """Keys looked up per table and variant."""
        return 1 + (self.bits if self.probe_radius else 0)

    @property
    def lookups_per_variant(self) -> int:
        """Bloom lookups per hash variant."""
        return self.tables * self.probes_per_table

    @property
    def size_bytes(self) -> int:
        """Size of the snapshot file in bytes."""
        return (self.bloom_bits + 7) // 8 + OVERHEAD_BYTES


@dataclass(frozen=True)
class Calibration:
    """Parameters and the model's predictions for one bank size.

    Attributes:
        params: the chosen parameters.
        bank_size: N, hashes (quality >= 50) in the bank.
        keys: Bloom keys the filter was sized for (rounded entry count times L).
        bloom_fpr: predicted false-positive rate of one Bloom lookup.
        noise_bank: per-table probability that unrelated bank entries set a probed key.
        noise_bloom: per-table probability of a Bloom false positive among the probes.
        false_match_per_variant: predicted false-match probability of one unrelated hash.
        false_match_per_image: same, with the 8 dihedral variants probed.
        false_match_bank_term: the dihedral per-image rate from bank collisions alone.
        false_match_bloom_term: the dihedral per-image rate from Bloom false positives alone.
        match_probability: predicted match probability at distance d = 0..hash_bits (index d).
        target_distance: distance the search maximised recall at.
    """

    params: Params
    bank_size: int
    keys: int
    bloom_fpr: float
    noise_bank: float
    noise_bloom: float
    false_match_per_variant: float
    false_match_per_image: float
    false_match_bank_term: float
    false_match_bloom_term: float
    match_probability: tuple[float, ...]
    target_distance: int

    def recall_at(self, distance: int) -> float:
        """Predicted match probability at a Hamming distance."""
        return self.match_probability[distance]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["size_bytes"] = self.params.size_bytes
        data["lookups_per_variant"] = self.params.lookups_per_variant
        data["match_probability"] = list(self.match_probability)
        return data


def rounded_entry_count(n: int) -> int:
    """Round an entry count up to a multiple of 1024 (at least 1024), hiding the exact bank size."""
    return max(ENTRY_ROUNDING, -(-n // ENTRY_ROUNDING) * ENTRY_ROUNDING)


def default_max_size_bytes(bank_size: int) -> int:
    """Default size budget: 128 bytes per bank entry, at least 1 MiB."""
    return max(1 << 20, 128 * bank_size)


@lru_cache(maxsize=4096)
def _comb(n: int, k: int) -> int:
    return math.comb(n, k)


def table_hit_probability(distance: int, bits: int, *, probe_radius: int = 0, hash_bits: int = 256) -> float:
    """Probability that one table with ``bits`` sampled positions hits a pair at ``distance``."""
    if not 0 <= distance <= hash_bits:
        raise ValueError(f"distance {distance} outside 0..{hash_bits}")
    total = _comb(hash_bits, bits)
    same = _comb(hash_bits - distance, bits)
    if probe_radius:
        same += distance * _comb(hash_bits - distance, bits - 1)
    return same / total


def binomial_tail(n: int, p: float, v: int) -> float:
    """P(X >= v) for X ~ Binomial(n, p), summed directly over the upper tail (accurate for tiny values)."""
    if v <= 0:
        return 1.0
    if v > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if p > 0.5 or v <= n * p:
        lower = sum(_comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(v))
        return max(0.0, 1.0 - lower)
    total = 0.0
    for i in range(v, n + 1):
        term = _comb(n, i) * p**i * (1.0 - p) ** (n - i)
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, total)


def blocked_bloom_fpr(keys: int, m: int, h: int) -> float:
    """False-positive rate of a blocked Bloom filter (512-bit blocks, ``h`` probes per key in one block).

    Keys per block follow Poisson(λ = keys / blocks); a block holding ``j`` keys has each bit still clear with
    probability ``(1 - h/512)^j``, and a lookup is a false positive when its ``h`` bits are all set.
    """
    blocks = max(1, m // BLOCK_BITS)
    lam = max(1, keys) / blocks
    clear = 1.0 - h / BLOCK_BITS
    top = int(lam + 12.0 * math.sqrt(lam) + 30)
    lo = max(0, int(lam - 12.0 * math.sqrt(lam) - 30))
    total = 0.0
    for j in range(lo, top + 1):
        log_pj = -lam + j * math.log(lam) - math.lgamma(j + 1)
        total += math.exp(log_pj) * (1.0 - clear**j) ** h
    return float(min(1.0, total))


_QUANTA_PER_DECADE = 50
_LOG_FACTORIAL = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, 20001, dtype=np.float64)))])


@lru_cache(maxsize=8192)
def _bits_per_key(log_fpr_q: int) -> tuple[float, int]:
    """Bits per key and probes that reach ``fpr = 10 ** (-log_fpr_q / 50)`` in a blocked filter (large n)."""
    fpr = 10.0 ** (-log_fpr_q / _QUANTA_PER_DECADE)
    hs = np.arange(1, MAX_BLOOM_HASHES + 1, dtype=np.float64)
    lo, hi = 0.5, 200.0
    best_h = 1
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        lam = BLOCK_BITS / mid
        j = np.arange(max(0, int(lam - 12 * math.sqrt(lam) - 30)), int(lam + 12 * math.sqrt(lam) + 30) + 1)
        log_pj = -lam + j * math.log(lam) - _LOG_FACTORIAL[j]
        fill = 1.0 - (1.0 - hs[:, None] / BLOCK_BITS) ** j[None, :]
        rates = (np.exp(log_pj)[None, :] * fill ** hs[:, None]).sum(axis=1)
        h_index = int(np.argmin(rates))
        if rates[h_index] <= fpr:
            hi, best_h = mid, h_index + 1
        else:
            lo = mid
    return hi, best_h


def bloom_geometry(keys: int, fpr: float) -> tuple[int, int]:
    """Bloom bits ``m`` (a multiple of 512) and probes ``h`` for ``keys`` entries at false-positive
    ``fpr``."""
    if not 0.0 < fpr < 1.0:
        raise ValueError("the Bloom false-positive rate must lie strictly between 0 and 1")
    keys = max(1, keys)
    # Quantise towards the stricter rate so the geometry never falls short.
    per_key, h = _bits_per_key(math.ceil(-_QUANTA_PER_DECADE * math.log10(fpr)))
    m = max(BLOCK_BITS, -(-math.ceil(keys * per_key) // BLOCK_BITS) * BLOCK_BITS)
    return m, h


def _bloom_fpr(keys: int, m: int, h: int) -> float:
    return blocked_bloom_fpr(keys, m, h)


def _per_image(rate: float, variants: int) -> float:
    return -math.expm1(variants * math.log1p(-min(rate, 1.0 - 1e-16)))


def predict(params: Params, bank_size: int, *, target_distance: int = DEFAULT_TARGET_DISTANCE) -> Calibration:
    """The model's predictions for given parameters and bank size."""
    keys = rounded_entry_count(bank_size) * params.tables
    p = _bloom_fpr(keys, params.bloom_bits, params.bloom_hashes)
    probes = params.probes_per_table
    per_key = 2.0**-params.bits
    r_bank = -math.expm1(bank_size * math.log1p(-min(probes * per_key, 1.0 - 1e-16)))
    r_bloom = -math.expm1(probes * math.log1p(-p))
    r = 1.0 - (1.0 - r_bank) * (1.0 - r_bloom)
    fm = binomial_tail(params.tables, r, params.min_votes)
    match = tuple(
        binomial_tail(
            params.tables,
            1.0
            - (
                1.0
                - table_hit_probability(
                    d, params.bits, probe_radius=params.probe_radius, hash_bits=params.hash_bits
                )
            )
            * (1.0 - r),
            params.min_votes,
        )
        for d in range(params.hash_bits + 1)
    )
    return Calibration(
        params=params,
        bank_size=bank_size,
        keys=keys,
        bloom_fpr=p,
        noise_bank=r_bank,
        noise_bloom=r_bloom,
        false_match_per_variant=fm,
        false_match_per_image=_per_image(fm, DIHEDRAL_VARIANTS),
        false_match_bank_term=_per_image(
            binomial_tail(params.tables, r_bank, params.min_votes), DIHEDRAL_VARIANTS
        ),
        false_match_bloom_term=_per_image(
            binomial_tail(params.tables, r_bloom, params.min_votes), DIHEDRAL_VARIANTS
        ),
        match_probability=match,
        target_distance=target_distance,
    )


def max_noise(tables: np.ndarray | int, votes: np.ndarray | int, budget_per_variant: float) -> np.ndarray:
    """Largest per-table noise ``r`` with ``P(Binomial(tables, r) >= votes) <= budget_per_variant``.

    That tail is the regularised incomplete beta ``I_r(votes, tables - votes + 1)``, inverted exactly;
    element-wise over arrays of table and vote counts.
    """
    from scipy.special import betaincinv

    v = np.asarray(votes, dtype=np.float64)
    return np.asarray(betaincinv(v, np.asarray(tables, dtype=np.float64) - v + 1.0, budget_per_variant))


def _table_grid(max_tables: int) -> list[int]:
    """Table counts the search tries: every count up to 160, then steps of about 12 % (multiples of 8)."""
    grid = set(range(1, min(max_tables, DENSE_TABLES) + 1))
    tables = DENSE_TABLES
    while tables < max_tables:
        tables = max(tables + 8, int(tables * 1.125) // 8 * 8)
        grid.add(min(tables, max_tables))
    return sorted(grid)


def _floor_votes(tables: np.ndarray, q_target: float, recall_floor: float) -> np.ndarray:
    """Largest minimum-votes ``v`` per table count with ``P(Binomial(L, q_target) >= v) >= recall_floor``.

    0 where no ``v >= 1`` reaches the floor. Noise votes only add hits, so the floor holds with noise too.
    """
    from scipy.stats import binom

    # ppf(a) is the smallest x with cdf(x) >= a, so cdf(x - 1) < a: v = x keeps P(X >= v) > 1 - a.
    return np.asarray(binom.ppf(1.0 - recall_floor, tables, q_target), dtype=np.int64)


@dataclass(frozen=True)
class _Search:
    """The fixed settings of one :func:`calibrate` search, shared by its steps."""

    bank_size: int
    target_distance: int
    hash_bits: int
    budget_bytes: int
    per_variant: float
    n_rounded: int
    max_lookups: int
    max_votes: int
    window: np.ndarray
    ideal: np.ndarray
    floor_index: int
    floor_recall: float
    recall_floor: float


#: (score, parameters with a placeholder Bloom geometry, Bloom false-positive rate) of one candidate.
_Scored = tuple[tuple[bool, bool, float, int, int], Params, float]


def _check_calibration_inputs(
    bank_size: int, target_distance: int, hash_bits: int, false_match_budget: float, recall_floor: float
) -> None:
    """Raise :class:`CalibrationError` for a negative bank, a target outside ``0..hash_bits`` or a budget
    or recall floor outside (0, 1)."""
    if bank_size < 0:
        raise CalibrationError("the bank size cannot be negative")
    if not 0 <= target_distance <= hash_bits:
        raise CalibrationError(f"the target distance must lie in 0..{hash_bits}")
    if not 0.0 < false_match_budget < 1.0:
        raise CalibrationError("the false-match budget must lie strictly between 0 and 1")
    if not 0.0 < recall_floor < 1.0:
        raise CalibrationError("the recall floor must lie strictly between 0 and 1")


def _new_search(
    bank_size: int, target_distance: int, hash_bits: int, budget_bytes: int, false_match_budget: float,
    max_lookups: int, max_votes: int, floor_distance: int, floor_recall: float, recall_floor: float,
) -> _Search:
    """The search settings, deriving the per-variant budget, rounded bank, distance window and step."""
    window = np.arange(0, min(hash_bits, 2 * target_distance + 1) + 1)
    return _Search(
        bank_size=bank_size,
        target_distance=target_distance,
        hash_bits=hash_bits,
        budget_bytes=budget_bytes,
        per_variant=-math.expm1(math.log1p(-false_match_budget) / DIHEDRAL_VARIANTS),
        n_rounded=rounded_entry_count(bank_size),
        max_lookups=max_lookups,
        max_votes=max_votes,
        window=window,
        ideal=(window <= target_distance).astype(np.float64),
        floor_index=int(np.searchsorted(window, floor_distance)) if floor_distance <= window[-1] else -1,
        floor_recall=floor_recall,
        recall_floor=recall_floor,
    )


def _vote_candidates(
    grid: np.ndarray, floor_votes: np.ndarray, max_votes: int
) -> tuple[list[int], list[int]]:
    """(tables, votes) pairs to try: votes 1..``max_votes`` per table count, then each count's floor votes
    where they exceed ``max_votes``."""
    cand_tables: list[int] = []
    cand_votes: list[int] = []
    for votes in range(1, max_votes + 1):
        keep = grid >= votes
        cand_tables += grid[keep].tolist()
        cand_votes += [votes] * int(keep.sum())
    keep = floor_votes > max_votes
    cand_tables += grid[keep].tolist()
    cand_votes += floor_votes[keep].tolist()
    return cand_tables, cand_votes


def _bloom_options(
    search: _Search, cand_tables: list[int], cand_votes: list[int], probes: int, r_bank: float
) -> list[tuple[int, int, int, float]]:
    """(tables, votes, Bloom bits, Bloom rate) for each candidate whose noise budget leaves room for a
    Bloom filter that fits the file budget; the least noisy such filter."""
    r_max = max_noise(np.array(cand_tables), np.array(cand_votes), search.per_variant)
    options: list[tuple[int, int, int, float]] = []
    for tables, votes, r in zip(cand_tables, cand_votes, r_max.tolist(), strict=True):
        if r <= r_bank:
            continue
        r_bloom = 1.0 - (1.0 - r) / (1.0 - r_bank)
        p_max = min(0.5, -math.expm1(math.log1p(-r_bloom) / probes))
        keys = search.n_rounded * tables
        # The least noisy filter that fits the file budget (noise votes shift the curve right).
        for shrink in _BLOOM_SHRINK:
            p = p_max * shrink
            if p <= 1e-12:
                continue
            m, _ = bloom_geometry(keys, p)
            if (m + 7) // 8 + OVERHEAD_BYTES <= search.budget_bytes:
                options.append((tables, votes, m, p))
                break
    return options


def _scored_options(
    search: _Search, options: list[tuple[int, int, int, float]], q: np.ndarray, k: int, radius: int,
    probes: int, r_bank: float,
) -> Iterator[_Scored]:
    """Each option with its score: recall floor at ``floor_distance`` met, recall floor at the target kept,
    minus the overshoot (kept) or the gap to the step (not kept), minus lookups, minus Bloom bits."""
    from scipy.stats import binom

    t_arr = np.array([o[0] for o in options], dtype=np.int64)
    v_arr = np.array([o[1] for o in options], dtype=np.int64)
    r_bloom_arr = -np.expm1(probes * np.log1p(-np.array([o[3] for o in options])))
    noise = 1.0 - (1.0 - r_bank) * (1.0 - r_bloom_arr)
    hit = 1.0 - (1.0 - q[None, :]) * (1.0 - noise[:, None])
    curves = binom.sf(v_arr[:, None] - 1, t_arr[:, None], hit)
    at_target = curves[:, search.target_distance]
    beyond = curves[:, search.target_distance + 1 :]
    overshoot = beyond.mean(axis=1) if beyond.shape[1] else np.zeros(len(options))
    gaps = np.abs(curves - search.ideal[None, :]).mean(axis=1)
    for i, (tables, votes, m, p) in enumerate(options):
        floor_ok = search.floor_index < 0 or bool(curves[i, search.floor_index] >= search.floor_recall)
        kept = bool(at_target[i] >= search.recall_floor)
        metric = float(overshoot[i] if kept else gaps[i])
        score = (floor_ok, kept, -round(metric, 5), -tables * probes, -m)
        yield score, Params(tables, k, votes, radius, m, 0, search.hash_bits), p


def _candidates(search: _Search, k: int, radius: int) -> Iterator[_Scored]:
    """The scored candidates with ``k``-bit keys and probe radius ``radius`` (none when they cannot fit)."""
    probes = 1 + (k if radius else 0)
    if probes * 2.0**-k >= 1.0 or search.max_lookups // probes < 1:
        return
    r_bank = -math.expm1(search.bank_size * math.log1p(-probes * 2.0**-k))
    q = np.array(
        [table_hit_probability(int(d), k, probe_radius=radius, hash_bits=search.hash_bits)
         for d in search.window]
    )
    grid = np.array(_table_grid(search.max_lookups // probes), dtype=np.int64)
    floor_votes = _floor_votes(grid, float(q[search.target_distance]), search.recall_floor)
    cand_tables, cand_votes = _vote_candidates(grid, floor_votes, search.max_votes)
    if not cand_tables:
        return
    options = _bloom_options(search, cand_tables, cand_votes, probes, r_bank)
    if options:
        yield from _scored_options(search, options, q, k, radius, probes, r_bank)


def _finish(search: _Search, chosen: Params, p: float) -> Calibration:
    """The chosen parameters with their Bloom geometry fitted to the noise budget, and their predictions."""
    probes = chosen.probes_per_table
    r_bank = -math.expm1(search.bank_size * math.log1p(-probes * 2.0**-chosen.bits))
    keys = search.n_rounded * chosen.tables
    m, h = _fit_bloom(keys, p, chosen.tables, chosen.min_votes, probes, r_bank, search.per_variant)
    chosen = Params(chosen.tables, chosen.bits, chosen.min_votes, chosen.probe_radius, m, h, search.hash_bits)
    return predict(chosen, search.bank_size, target_distance=search.target_distance)


@lru_cache(maxsize=64)
def calibrate(
    bank_size: int,
    *,
    target_distance: int = DEFAULT_TARGET_DISTANCE,
    max_size_bytes: int | None = None,
    false_match_budget: float = DEFAULT_FALSE_MATCH_BUDGET,
    max_lookups: int = DEFAULT_MAX_LOOKUPS,
    hash_bits: int = 256,
    max_votes: int = DEFAULT_MAX_VOTES,
    allow_multiprobe: bool = True,
    floor_distance: int = FLOOR_DISTANCE,
    floor_recall: float = FLOOR_RECALL,
    recall_floor: float = DEFAULT_RECALL_FLOOR,
    min_key_bits: int = DEFAULT_MIN_KEY_BITS,
) -> Calibration:
    """Pick L, k, minimum votes, probe radius and Bloom size for a bank of ``bank_size`` hashes.

    The ideal is PDQ's exact rule, a step: match at distance <= ``target_distance`` (D), not beyond. An LSH
    curve cannot be a step, so the search decides where its soft edge goes:

    * when some parameters keep a predicted recall of at least ``recall_floor`` at D (small banks can
      afford many short-keyed tables), it keeps those and puts the edge *above* D: it minimises the mean
      match probability over ``D+1..2D+1`` (the overshoot), so the snapshot loses none of the pairs PDQ
      matches and matches as few as it can of those PDQ rejects;
    * otherwise (large banks, where the noise and size budgets bind) it minimises the mean gap between the
      predicted curve and the step over ``0..2D+1``.

    Either way parameters with recall >= ``floor_recall`` at ``floor_distance`` come first when any reach
    it; ties go to fewer lookups, then a smaller file. Budgets: predicted false matches per image with 8
    dihedral variants <= ``false_match_budget``; file size <= ``max_size_bytes`` (default
    :func:`default_max_size_bytes`); Bloom lookups per variant <= ``max_lookups``; keys of at least
    ``min_key_bits`` bits (enumerating a table costs ``2^k`` digests). Minimum votes range over
    ``1..max_votes`` and, per table count, the largest value that keeps the recall floor.

    Raises:
        CalibrationError: when no parameters fit the budgets.
    """
    _check_calibration_inputs(bank_size, target_distance, hash_bits, false_match_budget, recall_floor)
    budget_bytes = default_max_size_bytes(bank_size) if max_size_bytes is None else max_size_bytes
    search = _new_search(
        bank_size, target_distance, hash_bits, budget_bytes, false_match_budget, max_lookups, max_votes,
        floor_distance, floor_recall, recall_floor,
    )
    best: _Scored | None = None
    for radius in (0, 1) if allow_multiprobe else (0,):
        for k in range(max(4, min_key_bits), min(64, hash_bits // 2) + 1):
            for candidate in _candidates(search, k, radius):
                if best is None or candidate[0] > best[0]:
                    best = candidate
    if best is None:
        raise CalibrationError(
            f"no parameters fit a bank of {bank_size} hashes within {budget_bytes} bytes, "
            f"{false_match_budget:g} false matches per image and {max_lookups} lookups per variant: "
            "raise --max-size-mb or the false-match budget"
        )
    _, chosen, p = best
    return _finish(search, chosen, p)


def _fit_bloom(
    keys: int, p: float, tables: int, votes: int, probes: int, r_bank: float, per_variant: float
) -> tuple[int, int]:
    """Bloom geometry for false-positive rate ``p``, grown until the rounded geometry meets the budget."""
    m, h = bloom_geometry(keys, p)
    for _ in range(20):
        r_bloom = -math.expm1(probes * math.log1p(-_bloom_fpr(keys, m, h)))
        r = 1.0 - (1.0 - r_bank) * (1.0 - r_bloom)
        if binomial_tail(tables, r, votes) <= per_variant:
            break
        m = -(-int(m * 1.01) // BLOCK_BITS) * BLOCK_BITS
        h = min(MAX_BLOOM_HASHES, max(1, round(m / keys * math.log(2))))
    return m, h


def calibrate_padded(bank_size: int, *, padded: bool = True, **kwargs: object) -> Calibration:
    """:func:`calibrate` for a snapshot of ``bank_size`` hashes as :func:`scanner.snapshot.build_snapshot`
    writes it: padded tables hold the rounded entry count of keys, so the noise is sized for that count."""
    return calibrate(rounded_entry_count(bank_size) if padded else bank_size, **kwargs)
