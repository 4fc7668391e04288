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
from scanner.hashers.spec import PDQ, match_distance_for, quality_gate

#: Default lookups per variant of OPRF-keyed snapshots: 8 x 128 = 1024 OPRF evaluations per image.
OPRF_MAX_LOOKUPS = 128

if TYPE_CHECKING:
    from scanner.calibration import Calibration, Params
    from scanner.commands.registry import CommandRegistry

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

    p = snap.command("verify", _verify, help="verify a snapshot; print its fingerprint and header as JSON")
    p.add_argument("snapshot", metavar="SNAP.bin")
    p.add_argument("--pubkey", required=True, metavar="HEX", help="pinned authority public key (64 hex)")
    p.add_argument("--now", type=float, help="check expiry at this Unix time (default: now)")

    p = snap.command("calibrate", _calibrate, help="pick L, k, minimum votes and Bloom size for a bank size")
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


def explicit_params(args: argparse.Namespace, bank_size: int) -> Params:
    """Parameters from --tables/--bits/--min-votes/--fpr (Bloom sized for the rounded bank).

    ``bank_size`` is the count the tables hold: the rounded count for padded snapshots.
    """
    import math

    from scanner.calibration import (
        DEFAULT_FALSE_MATCH_BUDGET,
        DIHEDRAL_VARIANTS,
        Params,
        bloom_geometry,
        max_noise,
        rounded_entry_count,
    )
    from scanner.errors import CalibrationError

    if None in (args.tables, args.bits, args.min_votes):
        raise CalibrationError("give all of --tables, --bits and --min-votes (or none, to calibrate)")
    if not (1 <= args.bits <= 64 and 1 <= args.tables <= 4096 and 1 <= args.min_votes <= args.tables):
        raise CalibrationError("need 1 <= --bits <= 64, 1 <= --tables <= 4096, 1 <= --min-votes <= --tables")
    keys = rounded_entry_count(bank_size) * args.tables
    fpr = args.fpr
    probes = 1 + (args.bits if args.probe_radius else 0)
    if fpr is None:
        per_variant = -math.expm1(math.log1p(-DEFAULT_FALSE_MATCH_BUDGET) / DIHEDRAL_VARIANTS)
        r_bank = -math.expm1(bank_size * math.log1p(-min(probes * 2.0**-args.bits, 1 - 1e-16)))
        r_max = float(max_noise(args.tables, args.min_votes, per_variant))
        fpr = 1e-3 if r_max <= r_bank else -math.expm1(math.log1p(-(1 - (1 - r_max) / (1 - r_bank))) / probes)
        fpr = min(max(fpr, 1e-9), 0.1)
    if not 0 < fpr < 1:
        raise CalibrationError("--fpr must lie strictly between 0 and 1")
    m, h = bloom_geometry(keys, fpr)
    return Params(args.tables, args.bits, args.min_votes, args.probe_radius, m, h)


def _build(args: argparse.Namespace) -> int:
    from scanner.authority import AuthorityKey
    from scanner.bank import HashBank
    from scanner.calibration import calibrate, predict, rounded_entry_count
    from scanner.errors import ScannerError
    from scanner.privacy import enumeration_cost
    from scanner.progress import progress_bar
    from scanner.snapshot import build_snapshot, write_snapshot_file

    now = int(time.time())
    if args.min_sources < 1:
        return _err("build", "--min-sources must be at least 1")
    try:
        key = AuthorityKey.load(args.key)
        with HashBank(args.bank, create=False) as bank:
            hashes = list(bank.snapshot_hashes(algorithm=args.algo, now=now, min_sources=args.min_sources))
        if not hashes:
            gate = quality_gate(args.algo)
            sources = f" with at least {args.min_sources} sources" if args.min_sources > 1 else ""
            why = f"{args.bank} holds no {args.algo} entries of quality >= {gate} that have not expired"
            why += sources
            return _err("build", why)
        hash_bits = len(hashes[0]) * 8
        oprf_key = None
        if args.keys == "oprf":
            from scanner.oprf import OprfKey

            if not args.oprf_key:
                return _err("build", "--keys oprf needs --oprf-key OPRF.key (authority oprf-keygen)")
            oprf_key = OprfKey.load(args.oprf_key)
            if args.probe_radius:
                return _err("build", "--keys oprf supports --probe-radius 0 only")
        elif args.oprf_key:
            return _err("build", "--oprf-key is only used with --keys oprf")
        max_lookups = args.max_lookups or (OPRF_MAX_LOOKUPS if oprf_key is not None else DEFAULT_MAX_LOOKUPS)
        # Padded tables hold the rounded count of keys: calibrate the noise for that many entries.
        sized_for = len(hashes) if args.no_padding else rounded_entry_count(len(hashes))
        if args.target_distance is None:  # the algorithm's spec; PDQ's rule scaled for other widths
            args.target_distance = match_distance_for(args.algo, hash_bits)
        if args.tables is None and args.bits is None and args.min_votes is None:
            cal = calibrate(
                sized_for,
                target_distance=args.target_distance,
                hash_bits=hash_bits,
                max_size_bytes=None if args.max_size_mb is None else int(args.max_size_mb * 1e6),
                min_key_bits=args.min_key_bits,
                recall_floor=args.recall_floor,
                max_lookups=max_lookups,
            )
            params = cal.params
        else:
            params = explicit_params(args, sized_for)
            if hash_bits != 256:
                from dataclasses import replace

                params = replace(params, hash_bits=hash_bits)
            cal = predict(params, sized_for, target_distance=args.target_distance)
        cost = enumeration_cost(params.tables, params.bits, oprf=oprf_key is not None)
        weak = cost.core_hours < args.min_enumeration_core_hours
        if oprf_key is None and weak and not args.allow_weak_privacy:
            return _err(
                "build",
                f"refused: enumerating this offline snapshot costs about {cost.core_hours:.2g} core-hours "
                f"(floor {args.min_enumeration_core_hours:g}); anyone holding it can recover the bank. Use "
                "--keys oprf, longer keys (--min-key-bits), or --allow-weak-privacy",
            )
        started = time.perf_counter()
        with progress_bar("building snapshot", len(hashes) * params.tables, quiet=args.json) as advance:
            data = build_snapshot(
                hashes,
                params=params,
                key=key,
                version=now if args.version is None else args.version,
                created=now,
                expires=now + int(args.expires_days * 86400),
                algorithm=args.algo,
                progress=lambda done, total: advance(completed=done),
                pad=not args.no_padding,
                oprf_key=oprf_key,
            )
        write_snapshot_file(args.out, data)
        elapsed = time.perf_counter() - started
    except ScannerError as exc:
        return _err("build", str(exc))
    from scanner.snapshot import fingerprint_of

    report = {
        "out": args.out,
        "entries": len(hashes),
        "min_sources": args.min_sources,
        "size_bytes": len(data),
        "seconds": round(elapsed, 3),
        "fingerprint": fingerprint_of(data),
        "version": now if args.version is None else args.version,
        "tables": params.tables,
        "bits": params.bits,
        "min_votes": params.min_votes,
        "probe_radius": params.probe_radius,
        "bloom_bits": params.bloom_bits,
        "bloom_hashes": params.bloom_hashes,
        "predicted_false_match_per_image": cal.false_match_per_image,
        "predicted_recall": {str(d): round(cal.recall_at(d), 4) for d in (8, 16, 24, PDQ.match_distance)},
        "keys": cost.keys,
        "padded": not args.no_padding,
        "entry_count": rounded_entry_count(len(hashes)),
        "enumeration_digests": cost.digests,
        "enumeration_core_hours": None if oprf_key is not None else cost.core_hours,
        "enumeration_batches": cost.batches or None,
        "oprf_public_key": oprf_key.public_key.hex() if oprf_key is not None else None,
        "privacy": cost.line(params.tables, params.bits),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"wrote {args.out}: {len(hashes)} hashes, {len(data)} bytes in {elapsed:.2f} s")
        print(f"fingerprint {report['fingerprint']}")
        print(
            f"L={params.tables} k={params.bits} v={params.min_votes} m={params.bloom_bits} "
            f"h={params.bloom_hashes}; "
            f"predicted recall d=16 {cal.recall_at(16):.3f}, "
            f"d={PDQ.match_distance} {cal.recall_at(PDQ.match_distance):.3f}; "
            f"false matches per image (dihedral) {cal.false_match_per_image:.3g}"
        )
        print(cost.line(params.tables, params.bits))
    return 0


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
