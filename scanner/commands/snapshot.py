"""`pocketscan snapshot build|verify|calibrate`: signed Bloom-filter snapshots of the hash bank.

Contract:
``pocketscan snapshot build --bank BANK.sqlite --key AUTHORITY.key --out SNAP.bin [--version N]
[--tables L --bits K --min-votes V --fpr P] [--keys offline|oprf [--oprf-key OPRF.key]]
[--min-enumeration-core-hours H] [--allow-weak-privacy]`` (prints the enumeration cost and the mode's
privacy in one ``privacy:`` line); ``pocketscan snapshot verify SNAP.bin --pubkey HEX`` prints the
fingerprint and header as JSON (exit 0 only if valid); ``pocketscan snapshot calibrate --bank-size N
[--target-distance D] [--max-size-mb S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from scanner.calibration_defaults import (
    DEFAULT_MAX_LOOKUPS,
    DEFAULT_MIN_ENUMERATION_CORE_HOURS,
    DEFAULT_MIN_KEY_BITS,
    DEFAULT_RECALL_FLOOR,
)
from scanner.hashers.spec import PDQ, quality_gate

if TYPE_CHECKING:
    from scanner.calibration import Calibration
    from scanner.commands.registry import CommandRegistry
    from scanner.snapshot.workflow import SignedSnapshot, SnapshotPlan

__all__ = ["register"]

_BUILD_EPILOG = f"""\
Without --tables/--bits/--min-votes the parameters come from `snapshot calibrate` for the bank's size
(entries that pass the algorithm's quality gate, >= {PDQ.min_quality} for PDQ, and have not expired). --fpr
sets the Bloom false-positive rate when you give the LSH parameters yourself (default: the largest rate that
keeps 1e-4 false matches per image, dihedral on).
The snapshot version defaults to the current Unix time, so later builds always supersede earlier ones.

Privacy: every table holds exactly the rounded entry count of distinct keys (the real ones plus random
decoys), so neither the fill ratio nor an enumeration of a table reveals the bank size better than the
rounding to 1024. The build prints the cost of enumerating every key of every table. An offline-keyed
snapshot (--keys offline) can be enumerated by anyone holding the file; below
--min-enumeration-core-hours the build refuses unless --allow-weak-privacy. With --keys oprf every key is an
RFC 9497 OPRF output under --oprf-key (`authority oprf-keygen`), devices need `authority oprf` to look up
keys, and nothing can be enumerated offline.
"""


def register(registry: CommandRegistry) -> None:
    """Add ``snapshot build``, ``snapshot verify`` and ``snapshot calibrate``."""
    snap = registry.group("snapshot")
    p = snap.command("build", _build, help="build and sign a snapshot of the bank", epilog=_BUILD_EPILOG)
    _add_build_inputs(p)
    _add_build_calibration(p)
    _add_build_keys(p)

    p = snap.command("verify", _verify, help="verify a snapshot; print its fingerprint and header as JSON")
    p.add_argument("snapshot", metavar="SNAP.bin")
    p.add_argument("--pubkey", required=True, metavar="HEX", help="pinned authority public key (64 hex)")
    p.add_argument("--now", type=float, help="check expiry at this Unix time (default: now)")

    p = snap.command("calibrate", _calibrate, help="pick L, k, minimum votes and Bloom size for a bank size")
    _add_calibrate(p)


def _add_build_inputs(p: argparse.ArgumentParser) -> None:
    """``snapshot build``: bank, key, output, version, hand-given LSH parameters, what the bank gives."""
    p.add_argument("--bank", required=True, metavar="BANK.sqlite")
    p.add_argument("--key", required=True, metavar="AUTHORITY.key", help="authority private key file")
    p.add_argument("--out", required=True, metavar="SNAP.bin")
    p.add_argument("--version", type=int, help="snapshot version (default: current Unix time)")
    p.add_argument("--tables", type=int, metavar="L", help="LSH tables")
    p.add_argument("--bits", type=int, metavar="K", help="sampled bits per table")
    p.add_argument("--min-votes", type=int, metavar="V", help="tables that must hit for a match")
    p.add_argument(
        "--probe-radius",
        type=int,
        choices=(0, 1),
        default=0,
        help="with explicit parameters: 1 also probes one-bit neighbours of each key",
    )
    p.add_argument("--fpr", type=float, metavar="P", help="Bloom false-positive rate per lookup")
    p.add_argument("--algo", default="pdq", help="hash algorithm taken from the bank (default: %(default)s)")
    p.add_argument(
        "--min-sources",
        type=int,
        default=1,
        metavar="N",
        help="only hashes vouched for by at least N distinct sources (bank import --source; 2 = Apple's "
        "two-organisation rule) (default: %(default)s)",
    )
    p.add_argument("--expires-days", type=float, default=30.0, help="validity (default: %(default)s days)")


def _add_build_calibration(p: argparse.ArgumentParser) -> None:
    """``snapshot build``: the calibration's target and budgets."""
    p.add_argument(
        "--target-distance",
        type=int,
        metavar="D",
        help=f"calibration target (default: the algorithm's match distance, {PDQ.match_distance} for PDQ)",
    )
    p.add_argument(
        "--min-key-bits",
        type=int,
        default=DEFAULT_MIN_KEY_BITS,
        metavar="K",
        help="calibration: shortest LSH key allowed; longer keys cost more to enumerate but soften the match "
        "curve (default: %(default)s, no floor; see docs/snapshot-format.md)",
    )
    p.add_argument(
        "--recall-floor",
        type=float,
        default=DEFAULT_RECALL_FLOOR,
        metavar="R",
        help="calibration: predicted recall to keep at the target distance when the budgets allow it "
        "(default: %(default)s; lower it to pull the soft edge back towards the target)",
    )
    p.add_argument(
        "--max-size-mb", type=float, help="calibration size budget (default: 128 bytes/entry, >= 1 MiB)"
    )


def _add_build_keys(p: argparse.ArgumentParser) -> None:
    """``snapshot build``: offline or OPRF keys, the privacy floor, padding, ``--json``."""
    p.add_argument(
        "--keys",
        choices=("offline", "oprf"),
        default="offline",
        help="offline: devices digest keys themselves (enumerable); oprf: keys are OPRF outputs under "
        "--oprf-key, looked up through `authority oprf` (default: %(default)s)",
    )
    p.add_argument("--oprf-key", metavar="OPRF.key", help="with --keys oprf: the OPRF key file")
    p.add_argument(
        "--max-lookups",
        type=int,
        metavar="N",
        help="calibration: lookups per hash variant (default: 384 offline; 128 with --keys oprf, where each "
        "lookup is one OPRF evaluation: 8 variants x 128 = 1024 per image)",
    )
    p.add_argument(
        "--min-enumeration-core-hours",
        type=float,
        default=DEFAULT_MIN_ENUMERATION_CORE_HOURS,
        metavar="H",
        help="offline keys: refuse a snapshot whose full enumeration costs less than H core-hours "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--allow-weak-privacy",
        action="store_true",
        help="build an offline snapshot below the enumeration floor anyway (small banks: the bank can be "
        "recovered from the file; see docs/privacy.md)",
    )
    p.add_argument(
        "--no-padding",
        action="store_true",
        help="do not pad tables with decoy keys (research only: the key counts then reveal the bank size)",
    )
    p.add_argument("--json", action="store_true", help="print the build report as JSON")


def _add_calibrate(p: argparse.ArgumentParser) -> None:
    """``snapshot calibrate``'s arguments."""
    p.add_argument("--bank-size", required=True, type=int, metavar="N")
    p.add_argument(
        "--target-distance",
        type=int,
        default=PDQ.match_distance,
        metavar="D",
        help="distance where the match curve should step down (default: %(default)s, PDQ's rule)",
    )
    p.add_argument("--max-size-mb", type=float, metavar="S", help="snapshot size budget in MB (10^6 bytes)")
    p.add_argument(
        "--min-key-bits",
        type=int,
        default=DEFAULT_MIN_KEY_BITS,
        metavar="K",
        help="shortest LSH key allowed (privacy against enumeration, see docs/snapshot-format.md; "
        "default: %(default)s, no floor)",
    )
    p.add_argument(
        "--false-match-budget",
        type=float,
        default=1e-4,
        help="predicted false matches per image, 8 dihedral variants (default: %(default)s)",
    )
    p.add_argument(
        "--max-lookups",
        type=int,
        default=DEFAULT_MAX_LOOKUPS,
        help="Bloom lookups per variant; bounds matching time (default: %(default)s)",
    )
    p.add_argument(
        "--recall-floor",
        type=float,
        default=DEFAULT_RECALL_FLOOR,
        metavar="R",
        help="keep this predicted recall at the target distance when the budgets allow it, and put the "
        "curve's soft edge above it (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")


def _err(cmd: str, message: str) -> int:
    print(f"pocketscan snapshot {cmd}: {message}", file=sys.stderr)
    return 2


def _print_calibration(cal: Calibration) -> None:
    p = cal.params
    print(
        f"bank size {cal.bank_size}: L={p.tables} tables, k={p.bits} bits, min votes {p.min_votes}, "
        f"probe radius {p.probe_radius}"
    )
    print(
        f"Bloom: m={p.bloom_bits} bits ({p.size_bytes / 1e6:.3f} MB file), h={p.bloom_hashes} probes, "
        f"p={cal.bloom_fpr:.3g} per lookup, {p.lookups_per_variant} lookups per variant"
    )
    print(
        f"predicted false matches per image: {cal.false_match_per_variant:.3g} (one variant), "
        f"{cal.false_match_per_image:.3g} (8 dihedral variants: bank term {cal.false_match_bank_term:.3g}, "
        f"Bloom term {cal.false_match_bloom_term:.3g})"
    )
    print("predicted match probability by Hamming distance d:")
    for d in range(0, 65):
        bar = "#" * round(40 * cal.match_probability[d])
        print(f"  d={d:2d}  {cal.match_probability[d]:8.4f}  {bar}")


def _calibrate(args: argparse.Namespace) -> int:
    from scanner.calibration import calibrate
    from scanner.errors import CalibrationError

    try:
        cal = calibrate(
            args.bank_size,
            target_distance=args.target_distance,
            max_size_bytes=None if args.max_size_mb is None else int(args.max_size_mb * 1e6),
            false_match_budget=args.false_match_budget,
            max_lookups=args.max_lookups,
            recall_floor=args.recall_floor,
            min_key_bits=args.min_key_bits,
        )
    except CalibrationError as exc:
        return _err("calibrate", str(exc))
    if args.json:
        print(json.dumps(cal.to_json()))
    else:
        _print_calibration(cal)
    return 0


def _build_plan(args: argparse.Namespace) -> SnapshotPlan:
    """The workflow plan of ``snapshot build``'s flags; loads the OPRF key file with ``--keys oprf``.

    Raises:
        ScannerError: a flag combination the build refuses, or an unreadable OPRF key file.
    """
    from scanner.errors import ScannerError
    from scanner.snapshot.workflow import ExplicitLsh, SnapshotPlan

    oprf_key = None
    if args.keys == "oprf":
        from scanner.oprf import OprfKey

        if not args.oprf_key:
            raise ScannerError("--keys oprf needs --oprf-key OPRF.key (authority oprf-keygen)")
        oprf_key = OprfKey.load(args.oprf_key)
        if args.probe_radius:
            raise ScannerError("--keys oprf supports --probe-radius 0 only")
    elif args.oprf_key:
        raise ScannerError("--oprf-key is only used with --keys oprf")
    lsh = None
    if not (args.tables is None and args.bits is None and args.min_votes is None):
        if None in (args.tables, args.bits, args.min_votes):
            from scanner.errors import CalibrationError

            raise CalibrationError("give all of --tables, --bits and --min-votes (or none, to calibrate)")
        lsh = ExplicitLsh(args.tables, args.bits, args.min_votes, args.probe_radius, args.fpr)
    return SnapshotPlan(
        algorithm=args.algo, min_sources=args.min_sources, version=args.version, valid_days=args.expires_days,
        pad=not args.no_padding, target_distance=args.target_distance, lsh=lsh,
        max_size_bytes=None if args.max_size_mb is None else int(args.max_size_mb * 1e6),
        min_key_bits=args.min_key_bits, recall_floor=args.recall_floor, max_lookups=args.max_lookups,
        oprf_key=oprf_key,
        min_enumeration_core_hours=None if args.allow_weak_privacy else args.min_enumeration_core_hours,
    )


def _source_plan(args: argparse.Namespace) -> SnapshotPlan:
    from scanner.snapshot.workflow import SnapshotPlan

    return SnapshotPlan(algorithm=args.algo, min_sources=args.min_sources)


def _build(args: argparse.Namespace) -> int:
    """bank -> dedupe -> (flags) -> calibrate -> privacy floor -> sign -> write, through the workflow."""
    from scanner.authority import AuthorityKey
    from scanner.errors import ScannerError
    from scanner.progress import progress_bar
    from scanner.snapshot import workflow

    now = int(time.time())
    if args.min_sources < 1:
        return _err("build", "--min-sources must be at least 1")
    try:
        key = AuthorityKey.load(args.key)
        hashes = workflow.load_bank(args.bank, _source_plan(args), now=now)
        if not hashes:
            gate = quality_gate(args.algo)
            sources = f" with at least {args.min_sources} sources" if args.min_sources > 1 else ""
            return _err("build", f"{args.bank} holds no {args.algo} entries of quality >= {gate} that have "
                        f"not expired{sources}")
        plan = _build_plan(args)
        sizing = workflow.calibrate_for(hashes, plan)
        try:
            privacy = workflow.privacy_cost(sizing.params, plan)
        except workflow.WeakPrivacyError as exc:
            return _err("build", f"refused: {exc}; anyone holding it can recover the bank. Use "
                        "--keys oprf, longer keys (--min-key-bits), or --allow-weak-privacy")
        started = time.perf_counter()
        work = len(hashes) * sizing.params.tables
        with progress_bar("building snapshot", work, quiet=args.json) as advance:
            snapshot = workflow.build_signed(hashes, sizing, key, plan, now=now, privacy=privacy,
                                             progress=lambda done, total: advance(completed=done))
        workflow.write_snapshot(args.out, snapshot)
        elapsed = time.perf_counter() - started
    except ScannerError as exc:
        return _err("build", str(exc))
    _print_build(args, snapshot, elapsed)
    return 0


def _build_report(args: argparse.Namespace, snapshot: SignedSnapshot, elapsed: float) -> dict[str, object]:
    """``snapshot build --json``'s fields."""
    from scanner.calibration import rounded_entry_count

    params, cal, cost = snapshot.params, snapshot.sizing.calibration, snapshot.privacy
    oprf_key = snapshot.oprf_public_key
    return {
        "out": args.out,
        "entries": snapshot.entries,
        "min_sources": args.min_sources,
        "size_bytes": len(snapshot.data),
        "seconds": round(elapsed, 3),
        "fingerprint": snapshot.fingerprint,
        "version": snapshot.version,
        "tables": params.tables,
        "bits": params.bits,
        "min_votes": params.min_votes,
        "probe_radius": params.probe_radius,
        "bloom_bits": params.bloom_bits,
        "bloom_hashes": params.bloom_hashes,
        "predicted_false_match_per_image": cal.false_match_per_image,
        "predicted_recall": {str(d): round(cal.recall_at(d), 4) for d in (8, 16, 24, PDQ.match_distance)},
        "keys": cost.keys,
        "padded": snapshot.padded,
        "entry_count": rounded_entry_count(snapshot.entries),
        "enumeration_digests": cost.digests,
        "enumeration_core_hours": None if oprf_key is not None else cost.core_hours,
        "enumeration_batches": cost.batches or None,
        "oprf_public_key": oprf_key,
        "privacy": cost.line(params.tables, params.bits),
    }


def _print_build(args: argparse.Namespace, snapshot: SignedSnapshot, elapsed: float) -> None:
    report = _build_report(args, snapshot, elapsed)
    if args.json:
        print(json.dumps(report))
        return
    params, cal = snapshot.params, snapshot.sizing.calibration
    print(f"wrote {args.out}: {snapshot.entries} hashes, {len(snapshot.data)} bytes in {elapsed:.2f} s")
    print(f"fingerprint {report['fingerprint']}")
    print(
        f"L={params.tables} k={params.bits} v={params.min_votes} m={params.bloom_bits} "
        f"h={params.bloom_hashes}; "
        f"predicted recall d=16 {cal.recall_at(16):.3f}, "
        f"d={PDQ.match_distance} {cal.recall_at(PDQ.match_distance):.3f}; "
        f"false matches per image (dihedral) {cal.false_match_per_image:.3g}"
    )
    print(report["privacy"])


def _verify(args: argparse.Namespace) -> int:
    from scanner.authority import parse_public_key
    from scanner.errors import ScannerError
    from scanner.matcher import Matcher
    from scanner.snapshot import map_snapshot_file

    try:
        pub = parse_public_key(args.pubkey)
        data = map_snapshot_file(args.snapshot)
        try:
            info = Matcher(pub).load(data, now=time.time() if args.now is None else args.now)
            out = info.to_json()
        finally:
            del data
    except ScannerError as exc:
        print(json.dumps({"valid": False, "error": str(exc)}))
        return _err("verify", str(exc))
    print(json.dumps({"valid": True, **out}))
    return 0
