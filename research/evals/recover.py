"""`research attacks recover`: how much of the bank an adversary holding only the snapshot gets back.

Runs :func:`research.recovery.recover` on a snapshot file: every key of every table is digested and tested
(offline snapshots: the header's BLAKE2b salt; OPRF snapshots: the offline digest finds nothing but Bloom
false positives, and ``--oprf URL`` pays one service evaluation per key until the service refuses), then the
present patterns are stitched into whole hashes. With ``--bank`` the candidates are compared with the real
bank (exact, and within ``--distance`` bits). Past ``--budget-seconds`` the full enumeration is extrapolated
from the measured rate, in core-hours (and, for the OPRF service, in days under its rate limit).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from research.evals.common import environment
from research.results import Plot, Results, Section, Series, Table
from scanner.hashers.spec import PDQ

if TYPE_CHECKING:
    from research.recovery import RecoveryResult

__all__ = ["BankScore", "RecoverConfig", "run", "score_against_bank"]


@contextmanager
def _progress(description: str, total: int, *, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback behind a rich progress bar on stderr (silent when quiet or not a tty)."""
    if quiet or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done, total: bar.update(task, completed=done)


@dataclass
class RecoverConfig:
    snapshot: str
    out: str
    bank: str | None = None
    budget_seconds: float = 600.0
    distance: int = PDQ.match_distance
    oprf: str | None = None
    oprf_batch: int = 4096
    profile: str | None = None
    max_partials: int = 1_000_000
    quiet: bool = True


def _bank_hashes(path: str, algo: str) -> np.ndarray:
    from scanner.bank import HashBank
    from scanner.matcher import MIN_QUALITY

    if not os.path.exists(path):
        raise FileNotFoundError(f"no bank at {path}")
    with HashBank(path, create=False) as bank:
        rows = list(bank.snapshot_hashes(algorithm=algo, now=int(time.time()), min_quality=MIN_QUALITY))
    if not rows:
        return np.zeros((0, 32), np.uint8)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), -1)


def _enumerate(cfg: RecoverConfig, data: bytes, header: Any) -> tuple[RecoveryResult, dict[str, Any]]:
    """Run the recovery (through the OPRF service with ``--oprf``): (result, the service's limits)."""
    from research.recovery import recover

    limits: dict[str, Any] = {}
    client = None
    if cfg.oprf:
        if not header.oprf_public_key:
            raise ValueError("--oprf is for OPRF-keyed snapshots; this one is keyed offline")
        from research.oprf_enumeration import ServiceEvaluator

        client = ServiceEvaluator(cfg.oprf, header, batch=cfg.oprf_batch, profile=cfg.profile)
    with _progress("enumerating keys", header.tables * (1 << header.bits), quiet=cfg.quiet) as tick:
        try:
            res = recover(
                data,
                budget_seconds=cfg.budget_seconds,
                evaluate=client,
                progress=tick,
                max_partials=cfg.max_partials,
            )
        finally:
            if client is not None:
                limits = client.limits()
                client.close()
    if client is not None:  # keys the service evaluated before it refused (a refused batch costs nothing)
        res.digests = client.evaluated
        if res.enumeration_seconds > 0 and res.digests:  # the service's time, not this process's CPU
            res.digest_rate = res.digests / res.enumeration_seconds
            res.extrapolated_core_hours = res.total_digests / res.digest_rate / 3600.0
    return res, limits


@dataclass
class BankScore:
    """How close the recovered candidates are to the real bank."""

    bank_size: int | None = None
    exact: int = 0
    within: int = 0
    distances: list[int] = field(default_factory=list)


def score_against_bank(candidates: list[bytes], bank: np.ndarray, distance: int) -> BankScore:
    """Each candidate's distance to its nearest bank hash; how many are exact and within ``distance``."""
    score = BankScore(bank_size=int(bank.shape[0]))
    if candidates and bank.shape[0]:
        cand = np.frombuffer(b"".join(candidates), dtype=np.uint8).reshape(len(candidates), -1)
        x = np.bitwise_xor(cand[:, None, :], bank[None, :, :])
        dist = np.bitwise_count(x).sum(axis=2).min(axis=1)
        score.distances = [int(d) for d in dist]
        score.exact = int((dist == 0).sum())
        score.within = int((dist <= distance).sum())
    return score


def _oprf_note(oprf_mode: bool, cfg: RecoverConfig) -> str:
    if not oprf_mode or cfg.oprf:
        return ""
    return (
        "OPRF-keyed snapshot: its Bloom keys are OPRF outputs under the authority's key, which the file "
        "does not hold. The offline enumeration digested every raw key as an offline snapshot would; "
        "what it found is Bloom false positives only."
    )


def _days_under_limit(cfg: RecoverConfig, res: RecoveryResult, limits: dict[str, Any]) -> float | None:
    per_day = limits.get("per_day")
    return res.total_digests / (cfg.oprf_batch * per_day) if cfg.oprf and per_day else None


def _summary(
    cfg: RecoverConfig, header: Any, res: RecoveryResult, score: BankScore, limits: dict[str, Any], note: str
) -> list[str]:
    summary = [
        f"{header.tables} tables x 2^{header.bits} keys = {res.total_digests:,} digests"
        f" ({'OPRF evaluations' if cfg.oprf else 'offline'}); computed {res.digests:,} in "
        f"{res.enumeration_seconds:.1f} s wall, {res.enumeration_cpu_seconds:.1f} s CPU "
        f"({res.digest_rate:,.0f}/s per core)",
        f"recovered {res.recovered} hash(es)"
        + (
            f"; {score.exact} exactly in the bank of {score.bank_size}, {score.within} within "
            f"{cfg.distance} bits"
            if cfg.bank
            else ""
        )
        + (" (stitching stopped: work or time budget exceeded)" if res.ambiguous else ""),
        f"full enumeration: {res.extrapolated_core_hours:.3g} core-hours at the measured rate"
        + ("" if res.completed else f" (not completed: {res.stopped_reason})"),
    ]
    days = _days_under_limit(cfg, res, limits)
    if days is not None:
        summary.append(
            f"under the service's limit ({limits['per_day']} batches of <= {cfg.oprf_batch} keys per account "
            f"per day): {days:,.0f} account-days"
        )
    if note:
        summary.append(note)
    return summary


def _text(header: Any, res: RecoveryResult, note: str) -> list[str]:
    counts = res.patterns_per_table
    text = [
        "Every key of every table was digested and tested against the filter; the present patterns were "
        "stitched across tables (a bank hash is present in all of them, decoys and false positives are not).",
        f"Present patterns per table: median {int(np.median(counts)) if counts else 0}, "
        f"min {min(counts) if counts else 0}, max {max(counts) if counts else 0} "
        f"(header entry count {header.entry_count}).",
        f"Stitching (depth-first join): {res.stitch_extensions:,} partial hashes created, peak "
        f"{res.peak_partials:,} at one depth, {res.stitch_seconds:.2f} s; "
        f"{res.uncovered_bits} bit positions sampled by no table.",
    ]
    if note:
        text.append(note)
    return text


def _recovery_table(cfg: RecoverConfig, header: Any, res: RecoveryResult, score: BankScore) -> Table:
    no_bank = "n/a (no --bank)"
    return Table(
        "Recovery",
        ["figure", "value"],
        [
            ["snapshot", os.path.basename(cfg.snapshot)],
            ["keys", "OPRF" if header.oprf_public_key else "offline (BLAKE2b, salt in header)"],
            ["tables L / bits k", f"{header.tables} / {header.bits}"],
            ["header entry count", header.entry_count],
            ["digests computed", res.digests],
            ["digests for the full enumeration", res.total_digests],
            ["enumeration seconds (wall)", res.enumeration_seconds],
            ["enumeration seconds (CPU)", res.enumeration_cpu_seconds],
            ["stitching seconds", res.stitch_seconds],
            ["recovered", res.recovered],
            ["exactly in the bank", score.exact if cfg.bank else no_bank],
            [f"within {cfg.distance} bits of the bank", score.within if cfg.bank else no_bank],
            ["extrapolated core-hours", res.extrapolated_core_hours],
        ],
    )


def _patterns_plots(header: Any, counts: list[int]) -> list[Plot]:
    if not counts:
        return []
    return [
        Plot(
            "hist",
            "Present patterns per table",
            "patterns found in one table",
            "tables",
            [Series("tables", [float(c) for c in counts])],
            vlines=[(float(header.entry_count), "header entry count")],
            caption="Each table holds the bank's patterns, the padding decoys and Bloom false positives.",
            name="recover-patterns",
        )
    ]


def _data(
    cfg: RecoverConfig, header: Any, res: RecoveryResult, score: BankScore, limits: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(headline, data) of ``results.json`` (a contract: keys and order stay)."""
    headline = {
        "recovered": res.recovered,
        "exact_in_bank": score.exact,
        "within_distance_of_bank": score.within,
        "digests": res.digests,
        "seconds": res.seconds,
        "extrapolated_core_hours": res.extrapolated_core_hours,
    }
    data = {
        **headline,
        "distance": cfg.distance,
        "bank_size": score.bank_size,
        "total_digests": res.total_digests,
        "digest_rate_per_second": res.digest_rate,
        "enumeration_seconds": res.enumeration_seconds,
        "enumeration_cpu_seconds": res.enumeration_cpu_seconds,
        "stitch_extensions": res.stitch_extensions,
        "stitch_seconds": res.stitch_seconds,
        "completed": res.completed,
        "stopped_reason": res.stopped_reason,
        "ambiguous": res.ambiguous,
        "peak_partials": res.peak_partials,
        "tables_enumerated": res.tables_enumerated,
        "patterns_per_table": res.patterns_per_table,
        "candidate_distances_to_bank": score.distances,
        "uncovered_bits": res.uncovered_bits,
        "oprf": bool(header.oprf_public_key),
        "service_limits": limits,
        "account_days_under_limit": _days_under_limit(cfg, res, limits),
        "header": {
            "tables": header.tables,
            "bits": header.bits,
            "entry_count": header.entry_count,
            "bloom_bits": header.bloom_bits,
            "bloom_hashes": header.bloom_hashes,
        },
    }
    return headline, data


def run(cfg: RecoverConfig, seed: int = 0) -> Results:
    """Enumerate and stitch the snapshot file; score the candidates against ``--bank`` when given."""
    from scanner.snapshot.format import HEADER_SIZE, Header

    with open(cfg.snapshot, "rb") as fh:
        data = fh.read()
    header = Header.unpack(data[:HEADER_SIZE])
    res, limits = _enumerate(cfg, data, header)
    score = BankScore()
    if cfg.bank:
        score = score_against_bank(res.candidates, _bank_hashes(cfg.bank, header.algorithm), cfg.distance)
    note = _oprf_note(bool(header.oprf_public_key), cfg)
    tables = [_recovery_table(cfg, header, res, score)]
    plots = _patterns_plots(header, res.patterns_per_table)
    headline, data_out = _data(cfg, header, res, score, limits)
    meta = {
        **environment(),
        "seed": seed,
        "budget_seconds": cfg.budget_seconds,
        "snapshot": cfg.snapshot,
        "bank": cfg.bank,
        "oprf": cfg.oprf,
        "host": platform.node(),
        "load_average": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "note": "candidate hashes are not written to the report (they are the bank)",
    }
    return Results(
        command="attacks recover",
        title="Bank recovery from a snapshot file",
        summary=_summary(cfg, header, res, score, limits, note),
        data=data_out,
        sections=[
            Section("Enumeration and stitching", text=_text(header, res, note), tables=tables, plots=plots)
        ],
        meta=meta,
        headline=headline,
    )
