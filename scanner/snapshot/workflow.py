"""The authority's snapshot workflow: bank -> dedupe -> calibrate (padded) -> sign -> write -> publish.

The one home of these steps. Every authority-side caller runs them from here: ``pocketscan snapshot build``
(:mod:`scanner.commands.snapshot`), ``pocketscan authority serve`` (:mod:`client.authority.workflow`), the
research snapshot (:mod:`research._snapshot_impl`) and the demo world (:mod:`client.demo.world`). Each step
is a small function over plain values, so a caller may stop between two of them (the command line checks
its flags between loading the bank and calibrating); :func:`make_snapshot` runs bank -> sign in order and
:func:`write_snapshot` writes the signed bytes atomically.

Padded snapshots hold the rounded entry count of keys in every table, so :func:`calibrate_for` sizes the
noise for that count (:func:`scanner.calibration.calibrate_padded`); the builder refuses padding whose chance
votes would reach the needed votes. The module has no network code: :func:`publish` hands the signed bytes
to a :class:`Publisher`; the relay-facing one lives in ``client/`` (``client.net.RelayPublisher``). A failed
publish raises the publisher's error and changes nothing here: the written file and the bank stay as they
were.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scanner.calibration_defaults import DEFAULT_MAX_LOOKUPS, DEFAULT_MIN_KEY_BITS, DEFAULT_RECALL_FLOOR
from scanner.errors import ScannerError

if TYPE_CHECKING:
    from scanner.authority import AuthorityKey
    from scanner.bank import ImportReport
    from scanner.calibration import Calibration, Params
    from scanner.oprf import OprfKey
    from scanner.privacy import EnumerationCost

__all__ = [
    "OPRF_MAX_LOOKUPS",
    "BuildSeeds",
    "ExplicitLsh",
    "Publishable",
    "Published",
    "Publisher",
    "SignedSnapshot",
    "Sizing",
    "SnapshotPlan",
    "WeakPrivacyError",
    "build_signed",
    "calibrate_for",
    "dedupe",
    "load_bank",
    "make_snapshot",
    "privacy_cost",
    "publish",
    "seed_bank",
    "write_snapshot",
]

#: Default lookups per variant of OPRF-keyed snapshots: 8 x 128 = 1024 OPRF evaluations per image.
OPRF_MAX_LOOKUPS = 128

_DAY_S = 86400


@dataclass(frozen=True)
class ExplicitLsh:
    """LSH parameters given by hand (``snapshot build --tables/--bits/--min-votes``); Bloom sized here."""

    tables: int
    bits: int
    min_votes: int
    probe_radius: int = 0
    fpr: float | None = None
    """Bloom false-positive rate per lookup (None: the largest that keeps the default false-match budget)."""


@dataclass(frozen=True)
class BuildSeeds:
    """Fixed LSH position seed, digest salt and decoy seed (reproducible research snapshots)."""

    seed: bytes = field(repr=False)
    salt: bytes = field(repr=False)
    decoy_seed: bytes = field(repr=False)


@dataclass(frozen=True)
class SnapshotPlan:
    """What snapshot to make of a bank. The defaults are ``pocketscan snapshot build``'s.

    Parameters come from, in order: ``params`` (complete, used as given), ``lsh`` (the Bloom sized for the
    entry count), else the calibration (``target_distance``, ``max_size_bytes``, ``min_key_bits``,
    ``recall_floor``, ``max_lookups``) for the padded entry count.
    """

    algorithm: str = "pdq"
    min_sources: int = 1
    version: int | None = None
    """Snapshot version; None: the build time, but at least ``min_version``."""
    min_version: int = 0
    valid_days: float = 30.0
    pad: bool = True
    target_distance: int | None = None
    """Calibration target; None: the algorithm's match distance for the bank's hash width."""
    params: Params | None = None
    lsh: ExplicitLsh | None = None
    max_size_bytes: int | None = None
    min_key_bits: int = DEFAULT_MIN_KEY_BITS
    recall_floor: float = DEFAULT_RECALL_FLOOR
    max_lookups: int | None = None
    """Lookups per variant; None: :data:`OPRF_MAX_LOOKUPS` with an OPRF key, else the calibration default."""
    oprf_key: OprfKey | None = field(default=None, repr=False)
    min_enumeration_core_hours: float | None = None
    """Offline keys: refuse (:class:`WeakPrivacyError`) below this enumeration cost; None: no floor."""
    workers: int | None = None
    """Build processes (None: the builder's default; 1 inside an event loop's worker thread)."""
    seeds: BuildSeeds | None = None


@dataclass(frozen=True)
class Sizing:
    """The calibrate step's result: parameters, the model's predictions, and the entry count they are for."""

    params: Params
    calibration: Calibration
    sized_for: int
    """Entries the tables hold: the rounded count when padded."""
    target_distance: int
    seconds: float


@dataclass(frozen=True)
class SignedSnapshot:
    """A signed snapshot of a bank (typed result of :func:`make_snapshot`)."""

    data: bytes = field(repr=False)
    version: int
    created: int
    expires: int
    entries: int
    """Distinct bank hashes in it (the decoys that pad the tables not counted)."""
    padded: bool
    sizing: Sizing
    privacy: EnumerationCost
    build_seconds: float
    oprf_public_key: str | None = None
    """Hex public key of the OPRF key its keys were made with (None: offline keys)."""

    @property
    def params(self) -> Params:
        return self.sizing.params

    @property
    def fingerprint(self) -> str:
        from scanner.snapshot.reader import fingerprint_of

        return fingerprint_of(self.data)


@dataclass(frozen=True)
class Published:
    """What the publish step returns: the version the publisher reports and how long it took."""

    version: int
    seconds: float


class Publishable(Protocol):
    """Signed snapshot bytes and their version (a :class:`SignedSnapshot`, ``authority serve``'s build)."""

    @property
    def data(self) -> bytes: ...

    @property
    def version(self) -> int: ...


class Publisher(Protocol):
    """Uploads a signed snapshot and makes it the newest; returns the published version.

    Raises its own error when the upload fails (the relay-facing publisher lives in ``client/``).
    """

    async def publish(self, data: bytes, version: int) -> int: ...


class WeakPrivacyError(ScannerError):
    """An offline-keyed snapshot whose full enumeration costs less than the plan's floor."""

    def __init__(self, cost: EnumerationCost, floor: float) -> None:
        super().__init__(f"enumerating this offline snapshot costs about {cost.core_hours:.2g} core-hours "
                         f"(floor {floor:g})")
        self.cost = cost
        self.floor = floor


# ----- bank -> dedupe ----------------------------------------------------------------------------
def seed_bank(bank_path: str | os.PathLike[str], algorithm: str, hashes: Iterable[bytes],
              qualities: Iterable[int], *, source: str, now: int) -> ImportReport:
    """A fresh bank at ``bank_path`` (any old one removed) holding ``hashes``: imports dedupe.

    For callers whose hashes come from images rather than a standing bank (the demo, research).
    """
    from scanner.bank import HashBank, NewEntry

    for suffix in ("", "-wal", "-shm"):
        Path(f"{os.fspath(bank_path)}{suffix}").unlink(missing_ok=True)
    with HashBank(bank_path) as bank:
        entries = (NewEntry(algorithm=algorithm, hash=bytes(h).hex(), quality=int(q), source=source)
                   for h, q in zip(hashes, qualities, strict=True))
        return bank.add(entries, now=now)


def dedupe(hashes: Iterable[bytes]) -> list[bytes]:
    """Each distinct hash once, in first-seen order."""
    return list(dict.fromkeys(bytes(h) for h in hashes))


def load_bank(bank_path: str | os.PathLike[str], plan: SnapshotPlan, *, now: int) -> list[bytes]:
    """The distinct hashes that enter a snapshot: the plan's algorithm, past its quality gate, not expired,
    vouched for by at least ``plan.min_sources`` sources.

    Raises:
        BankError: no such bank, or not a usable one.
    """
    from scanner.bank import HashBank

    with HashBank(bank_path, create=False) as bank:
        return dedupe(bank.snapshot_hashes(algorithm=plan.algorithm, now=now, min_sources=plan.min_sources))


# ----- calibrate ---------------------------------------------------------------------------------
def explicit_params(lsh: ExplicitLsh, bank_size: int) -> Params:
    """Parameters from hand-given LSH values, the Bloom sized for ``bank_size`` (the rounded count for
    padded snapshots).

    Raises:
        CalibrationError: values out of range.
    """
    from scanner.calibration import (
        DEFAULT_FALSE_MATCH_BUDGET,
        DIHEDRAL_VARIANTS,
        Params,
        bloom_geometry,
        max_noise,
        rounded_entry_count,
    )
    from scanner.errors import CalibrationError

    if not (1 <= lsh.bits <= 64 and 1 <= lsh.tables <= 4096 and 1 <= lsh.min_votes <= lsh.tables):
        raise CalibrationError("need 1 <= --bits <= 64, 1 <= --tables <= 4096, 1 <= --min-votes <= --tables")
    keys = rounded_entry_count(bank_size) * lsh.tables
    fpr = lsh.fpr
    probes = 1 + (lsh.bits if lsh.probe_radius else 0)
    if fpr is None:
        per_variant = -math.expm1(math.log1p(-DEFAULT_FALSE_MATCH_BUDGET) / DIHEDRAL_VARIANTS)
        r_bank = -math.expm1(bank_size * math.log1p(-min(probes * 2.0**-lsh.bits, 1 - 1e-16)))
        r_max = float(max_noise(lsh.tables, lsh.min_votes, per_variant))
        fpr = 1e-3 if r_max <= r_bank else -math.expm1(math.log1p(-(1 - (1 - r_max) / (1 - r_bank))) / probes)
        fpr = min(max(fpr, 1e-9), 0.1)
    if not 0 < fpr < 1:
        raise CalibrationError("--fpr must lie strictly between 0 and 1")
    m, h = bloom_geometry(keys, fpr)
    return Params(lsh.tables, lsh.bits, lsh.min_votes, lsh.probe_radius, m, h)


def _given_params(plan: SnapshotPlan, sized_for: int) -> Params | None:
    if plan.params is not None:
        return plan.params
    return None if plan.lsh is None else explicit_params(plan.lsh, sized_for)


def calibrate_for(hashes: Sequence[bytes], plan: SnapshotPlan) -> Sizing:
    """Parameters for a snapshot of ``hashes``, sized for the padded entry count unless ``plan.pad`` is off.

    Raises:
        CalibrationError: no parameters fit the budgets, or hand-given values out of range.
    """
    from scanner.calibration import calibrate_padded, predict, rounded_entry_count
    from scanner.hashers.spec import match_distance_for

    started = time.perf_counter()
    hash_bits = len(hashes[0]) * 8 if hashes else 256
    sized_for = rounded_entry_count(len(hashes)) if plan.pad else len(hashes)
    target = match_distance_for(plan.algorithm, hash_bits) if plan.target_distance is None \
        else plan.target_distance
    given = _given_params(plan, sized_for)
    if given is not None:
        params = given if given.hash_bits == hash_bits else replace(given, hash_bits=hash_bits)
        cal = predict(params, sized_for, target_distance=target)
    else:
        oprf = plan.oprf_key is not None
        max_lookups = plan.max_lookups or (OPRF_MAX_LOOKUPS if oprf else DEFAULT_MAX_LOOKUPS)
        cal = calibrate_padded(max(1, len(hashes)), padded=plan.pad, target_distance=target,
                               hash_bits=hash_bits, max_size_bytes=plan.max_size_bytes,
                               min_key_bits=plan.min_key_bits, recall_floor=plan.recall_floor,
                               max_lookups=max_lookups)
        params = cal.params
    return Sizing(params, cal, sized_for, target, time.perf_counter() - started)


def privacy_cost(params: Params, plan: SnapshotPlan) -> EnumerationCost:
    """The cost of enumerating every key of every table.

    Raises:
        WeakPrivacyError: offline keys below ``plan.min_enumeration_core_hours``.
    """
    from scanner.privacy import enumeration_cost

    cost = enumeration_cost(params.tables, params.bits, oprf=plan.oprf_key is not None)
    floor = plan.min_enumeration_core_hours
    if plan.oprf_key is None and floor is not None and cost.core_hours < floor:
        raise WeakPrivacyError(cost, floor)
    return cost


# ----- build and sign -> write ---------------------------------------------------------------------
def build_signed(hashes: Sequence[bytes], sizing: Sizing, key: AuthorityKey, plan: SnapshotPlan, *,
                 now: int, privacy: EnumerationCost,
                 progress: Callable[[int, int], None] | None = None) -> SignedSnapshot:
    """Build the Bloom tables of ``hashes`` (padded with decoys unless ``plan.pad`` is off) and sign them.

    Raises:
        ScannerError: the builder refused (saturating padding, bad parameters).
    """
    from scanner.snapshot.builder import build_snapshot

    version = plan.version if plan.version is not None else max(now, plan.min_version)
    expires = now + int(plan.valid_days * _DAY_S)
    seeds = plan.seeds
    started = time.perf_counter()
    data = build_snapshot(hashes, params=sizing.params, key=key, version=version, created=now,
                          expires=expires,
                          algorithm=plan.algorithm, progress=progress, workers=plan.workers, pad=plan.pad,
                          oprf_key=plan.oprf_key, seed=seeds.seed if seeds else None,
                          salt=seeds.salt if seeds else None, decoy_seed=seeds.decoy_seed if seeds else None)
    oprf_public = plan.oprf_key.public_key.hex() if plan.oprf_key is not None else None
    return SignedSnapshot(data, version, now, expires, len(hashes), plan.pad, sizing, privacy,
                          time.perf_counter() - started, oprf_public)


def make_snapshot(bank_path: str | os.PathLike[str], key: AuthorityKey, plan: SnapshotPlan, *,
                  now: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> SignedSnapshot:
    """Bank -> dedupe -> calibrate (padded) -> privacy floor -> build and sign. An empty bank gives an empty
    (all-decoy) snapshot: a bank emptied by removals must still supersede the last one.

    Raises:
        ScannerError: from any step (BankError, CalibrationError, WeakPrivacyError, SnapshotError).
    """
    at = int(time.time()) if now is None else now
    hashes = load_bank(bank_path, plan, now=at)
    sizing = calibrate_for(hashes, plan)
    privacy = privacy_cost(sizing.params, plan)
    return build_signed(hashes, sizing, key, plan, now=at, privacy=privacy, progress=progress)


def write_snapshot(path: str | os.PathLike[str], snapshot: SignedSnapshot) -> Path:
    """Write the signed bytes to ``path`` atomically (temporary file, fsync, rename); return the path."""
    from scanner.snapshot.io import write_snapshot_file

    write_snapshot_file(path, snapshot.data)
    return Path(path)


# ----- publish -----------------------------------------------------------------------------------
async def publish(snapshot: Publishable, publisher: Publisher) -> Published:
    """Hand the signed snapshot to ``publisher``; its error propagates and nothing here changes."""
    started = time.perf_counter()
    version = await publisher.publish(snapshot.data, snapshot.version)
    return Published(int(version), time.perf_counter() - started)
