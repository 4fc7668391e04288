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

:func:`calibrate` searches ``k``, ``L``, ``v`` and the probe radius for the highest predicted recall at a
target
distance under three budgets: false matches per image (dihedral on), snapshot size, and Bloom lookups per
variant (which bounds the matching time). Everything here is pure arithmetic over ``math``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from scanner.errors import CalibrationError

__all__ = [
    "DEFAULT_FALSE_MATCH_BUDGET",
    "DEFAULT_MAX_LOOKUPS",
    "DEFAULT_TARGET_DISTANCE",
    "DIHEDRAL_VARIANTS",
    "Calibration",
    "CalibrationError",
    "Params",
    "binomial_tail",
    "blocked_bloom_fpr",
    "bloom_geometry",
    "calibrate",
    "default_max_size_bytes",
    "predict",
    "rounded_entry_count",
    "table_hit_probability",
]

#: Default budget of predicted false matches per image, with the 8 dihedral variants probed.
DEFAULT_FALSE_MATCH_BUDGET = 1e-4
#: PDQ's recommended match threshold; the default distance the calibration maximises recall at.
DEFAULT_TARGET_DISTANCE = 31
#: Default cap on Bloom lookups per hash variant (L tables times probes per table): bounds matching time.
DEFAULT_MAX_LOOKUPS = 160
#: Default maximum of the minimum-votes parameter the search tries.
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


@lru_cache(maxsize=4096)
def _max_noise(tables: int, votes: int, budget_per_variant: float) -> float:
    """Largest per-table noise r with P(Binomial(tables, r) >= votes) <= budget_per_variant."""
    lo, hi = 0.0, 1.0
    if binomial_tail(tables, 1e-300, votes) > budget_per_variant:
        return 0.0
    for _ in range(80):
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 2**40
        if binomial_tail(tables, mid, votes) <= budget_per_variant:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-7 * hi:
            break
    return lo


def _step_curves(tables: np.ndarray, q: np.ndarray, noise: float, votes: int) -> np.ndarray:
    """Match probability for every (L, d): rows follow ``tables``, columns follow ``q`` (vectorised)."""
    hit = 1.0 - (1.0 - q[None, :]) * (1.0 - noise)
    n = tables[:, None].astype(np.float64)
    lower = np.zeros((len(tables), len(q)))
    log_hit = np.log(np.clip(hit, 1e-300, 1.0))
    log_miss = np.log(np.clip(1.0 - hit, 1e-300, 1.0))
    for i in range(votes):
        log_c = np.where(
            tables >= i,
            _LOG_FACTORIAL[tables] - _LOG_FACTORIAL[i] - _LOG_FACTORIAL[np.maximum(tables - i, 0)],
            -np.inf,
        )
        lower += np.exp(log_c[:, None] + i * log_hit + (n - i) * log_miss)
    return np.clip(1.0 - lower, 0.0, 1.0)


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
) -> Calibration:
    """Pick L, k, minimum votes, probe radius and Bloom size for a bank of ``bank_size`` hashes.

    The ideal is PDQ's exact rule, a step: match at distance <= ``target_distance``, not beyond. The search
    minimises the mean gap between the predicted match curve and that step over distances ``0..2D+1``
    (ties: fewer lookups, then a smaller file), among parameters whose recall at ``floor_distance`` is at
    least ``floor_recall`` when any reach it, subject to: predicted false matches per image with 8 dihedral
    variants <= ``false_match_budget``; file size <= ``max_size_bytes`` (default
    :func:`default_max_size_bytes`); Bloom lookups per variant <= ``max_lookups``.

    Raises:
        CalibrationError: when no parameters fit the budgets.
    """
    if bank_size < 0:
        raise CalibrationError("the bank size cannot be negative")
    if not 0 <= target_distance <= hash_bits:
        raise CalibrationError(f"the target distance must lie in 0..{hash_bits}")
    if not 0.0 < false_match_budget < 1.0:
        raise CalibrationError("the false-match budget must lie strictly between 0 and 1")
    budget_bytes = default_max_size_bytes(bank_size) if max_size_bytes is None else max_size_bytes
    per_variant = -math.expm1(math.log1p(-false_match_budget) / DIHEDRAL_VARIANTS)
    n_rounded = rounded_entry_count(bank_size)
    window = np.arange(0, min(hash_bits, 2 * target_distance + 1) + 1)
    ideal = (window <= target_distance).astype(np.float64)
    floor_index = int(np.searchsorted(window, floor_distance)) if floor_distance <= window[-1] else -1
    best: tuple[tuple[bool, float, int, int], Params] | None = None
    for radius in (0, 1) if allow_multiprobe else (0,):
        for k in range(4, min(64, hash_bits // 2) + 1):
            probes = 1 + (k if radius else 0)
            if probes * 2.0**-k >= 1.0:
                continue
            r_bank = -math.expm1(bank_size * math.log1p(-probes * 2.0**-k))
            q = np.array(
                [table_hit_probability(int(d), k, probe_radius=radius, hash_bits=hash_bits) for d in window]
            )
            for votes in range(1, max_votes + 1):
                feasible: list[tuple[int, int, int]] = []
                for tables in range(votes, max_lookups // probes + 1):
                    r_max = _max_noise(tables, votes, per_variant)
                    if r_max <= r_bank:
                        continue
                    r_bloom = 1.0 - (1.0 - r_max) / (1.0 - r_bank)
                    p = -math.expm1(math.log1p(-r_bloom) / probes)
                    if p <= 1e-12:
                        continue
                    keys = n_rounded * tables
                    # Cheap upper bound first (blocking adds < 60 % bits down to p = 1e-7, < 200 % below);
                    # the exact geometry only when the bound does not fit.
                    factor = 1.6 if p >= 1e-7 else 3.0
                    m = math.ceil(factor * keys * math.log(1.0 / min(p, 0.5)) / math.log(2) ** 2)
                    if m // 8 + OVERHEAD_BYTES > budget_bytes:
                        m, _ = bloom_geometry(keys, min(p, 0.5))
                    if (m + 7) // 8 + OVERHEAD_BYTES > budget_bytes:
                        continue
                    feasible.append((tables, m, 0))
                if not feasible:
                    continue
                curves = _step_curves(np.array([f[0] for f in feasible]), q, r_bank, votes)
                gaps = np.abs(curves - ideal[None, :]).mean(axis=1)
                for (tables, m, h), gap, curve in zip(feasible, gaps, curves, strict=True):
                    floor_ok = floor_index < 0 or bool(curve[floor_index] >= floor_recall)
                    score = (floor_ok, -round(float(gap), 5), -tables * probes, -m)
                    if best is None or score > best[0]:
                        best = (score, Params(tables, k, votes, radius, m, h, hash_bits))
    if best is None:
        raise CalibrationError(
            f"no parameters fit a bank of {bank_size} hashes within {budget_bytes} bytes, "
            f"{false_match_budget:g} false matches per image and {max_lookups} lookups per variant: "
            "raise --max-size-mb or the false-match budget"
        )
    chosen = best[1]
    probes = chosen.probes_per_table
    r_bank = -math.expm1(bank_size * math.log1p(-probes * 2.0**-chosen.bits))
    r_max = _max_noise(chosen.tables, chosen.min_votes, per_variant)
    r_bloom = 1.0 - (1.0 - r_max) / (1.0 - r_bank)
    p = -math.expm1(math.log1p(-r_bloom) / probes)
    m, h = _fit_bloom(
        n_rounded * chosen.tables, min(p, 0.5), chosen.tables, chosen.min_votes, probes, r_bank, per_variant
    )
    chosen = Params(chosen.tables, chosen.bits, chosen.min_votes, chosen.probe_radius, m, h, hash_bits)
    return predict(chosen, bank_size, target_distance=target_distance)


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
