"""`pocketscan bank import|remove|list|stats`: manage the authority's hash bank (SQLite).

Contract: ``pocketscan bank import --bank BANK.sqlite FILE|DIR ...``, ``bank remove``, ``bank list``,
``bank stats``. An import is all-or-nothing: any malformed line is reported with its line number on stderr
and nothing is added (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from scanner.hashers.spec import quality_gate

if TYPE_CHECKING:
    from scanner.commands.registry import CommandRegistry

__all__ = ["register"]

_IMPORT_EPILOG = """\
sources:
  hashes.txt    one hex hash per line, optionally "hex,quality" (ThreatExchange / StopNCII style); # comments
  hashes.csv    header row with a "hash" column; optional quality, label (or category), algorithm, expires
  DIR or image  image files, hashed with the bank's algorithm (quality from the hasher)
an import is one transaction: any malformed line (reported as FILE:LINE: reason) refuses the whole import.
exit status: 0 imported, 2 refused (nothing added)
"""


def register(registry: CommandRegistry) -> None:
    """Add the ``bank`` group."""
    bank = registry.group("bank", help="manage the authority's hash bank (import, remove, list, stats)")
    p = bank.command(
        "import",
        _import,
        help="import hashes from text/CSV files or folders of images",
        epilog=_IMPORT_EPILOG,
    )
    p.add_argument("--bank", required=True, metavar="BANK.sqlite", help="bank database (created if missing)")
    p.add_argument(
        "sources", nargs="+", metavar="FILE|DIR", help="text or CSV files of hashes, image folders"
    )
    p.add_argument("--algo", default="pdq", help="hash algorithm of the entries (default: %(default)s)")
    p.add_argument("--label", default="", help="label or category stored with every entry")
    p.add_argument(
        "--source",
        default="local",
        metavar="NAME",
        help="provenance: the organisation or list these hashes come from; a hash already in the bank gains "
        "this source (snapshot build --min-sources counts them) (default: %(default)s)",
    )
    p.add_argument(
        "--quality",
        type=int,
        default=100,
        metavar="Q",
        help="quality for text entries that do not carry one (default: %(default)s)",
    )
    p.add_argument("--expires-days", type=float, metavar="DAYS", help="entries leave snapshots after DAYS")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = bank.command("remove", _remove, help="remove entries by hash (appeals, reversals)")
    p.add_argument("--bank", required=True, metavar="BANK.sqlite")
    p.add_argument("hashes", nargs="*", metavar="HASH", help="hex hashes to remove")
    p.add_argument("--from-file", metavar="FILE", help="text file of hashes to remove (one per line)")
    p.add_argument("--label", help="remove every entry with this label")
    p.add_argument("--algo", default="pdq", help="hash algorithm (default: %(default)s)")
    p.add_argument("--reason", default="", help="why (recorded with each removal in the bank)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = bank.command("list", _list, help="list bank entries")
    p.add_argument("--bank", required=True, metavar="BANK.sqlite")
    p.add_argument("--algo", help="only this algorithm")
    p.add_argument(
        "--limit", type=int, default=100, help="at most this many entries (default: %(default)s; 0 = all)"
    )
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true", help="JSON Lines output")

    p = bank.command("stats", _stats, help="counts per algorithm, quality, expiry and label, as JSON",
                     description="Print the bank's counts as one JSON object: entries, by_algorithm,\n"
                                 "low_quality, expired, snapshot_eligible, labels, first_added / last_added\n"
                                 "(Unix seconds) and first_added_at / last_added_at (ISO 8601, UTC).")
    p.add_argument("--bank", required=True, metavar="BANK.sqlite")
    p.add_argument("--json", action="store_true", help="accepted for scripts; the output is always JSON")


def _err(message: str) -> int:
    print(f"pocketscan bank: {message}", file=sys.stderr)
    return 2


def _import(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from scanner.bank import HashBank, check_source_name
    from scanner.bank_import import collect_entries
    from scanner.errors import BankImportError, ScannerError

    now = int(time.time())
    try:
        origin = check_source_name(args.source)
    except ScannerError as exc:
        return _err(f"--source: {exc}")
    expires = None if args.expires_days is None else now + int(args.expires_days * 86400)
    if not 0 <= args.quality <= 100:
        return _err("--quality must lie in 0..100")
    from scanner.progress import progress_bar

    try:
        with progress_bar("hashing images", None, quiet=args.json) as advance:

            def on_image(path: object) -> None:
                advance(description=f"hashing {str(path)[-50:]}")

            entries = collect_entries(
                args.sources,
                algorithm=args.algo,
                label=args.label,
                default_quality=args.quality,
                expires=expires,
                on_image=on_image,
            )
        entries = [replace(e, origin=origin) for e in entries]
        with HashBank(args.bank) as bank:
            report = bank.add(entries, now=now)
    except BankImportError as exc:
        print(
            f"pocketscan bank import: refused, nothing was added ({len(exc.problems)} problems):",
            file=sys.stderr,
        )
        for src, line, why in exc.problems:
            print(f"  {src}:{line}: {why}" if line else f"  {src}: {why}", file=sys.stderr)
        return 2
    except ScannerError as exc:
        return _err(str(exc))
    low = sum(1 for e in entries if e.quality < quality_gate(e.algorithm))
    out = {
        "bank": args.bank,
        "read": len(entries),
        "added": report.added,
        "duplicates": report.duplicates,
        "low_quality": low,
        "source": origin,
        "sources_added": report.sources_added,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"imported {report.added} new entries into {args.bank} from source {origin} "
            f"({report.duplicates} duplicates skipped, {report.sources_added - report.added} of them gained "
            f"this source; {low} below quality {quality_gate(args.algo)} kept but never put in snapshots)"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from scanner.bank import HashBank
    from scanner.bank_import import check_hash, collect_entries
    from scanner.errors import BankImportError, ScannerError

    if not args.hashes and not args.from_file and args.label is None:
        return _err("give hashes, --from-file FILE or --label LABEL")
    try:
        targets = [h.strip().lower() for h in args.hashes]
        if args.from_file:
            targets += [e.hash for e in collect_entries([args.from_file], algorithm=args.algo)]
        bad = [h for h in targets if check_hash(h, args.algo)]
        if bad:
            return _err(f"not a {args.algo} hash: {bad[0][:16]!r}: {check_hash(bad[0], args.algo)}")
        with HashBank(args.bank, create=False) as bank:
            removed, missing = bank.remove(targets, algorithm=args.algo, reason=args.reason)
            if args.label is not None:
                removed += bank.remove_label(args.label)
    except BankImportError as exc:
        return _err(str(exc))
    except ScannerError as exc:
        return _err(str(exc))
    if args.json:
        print(json.dumps({"removed": removed, "not_found": missing}))
    else:
        print(
            f"removed {removed} entries"
            + (f"; {len(missing)} hashes were not in the bank" if missing else "")
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from scanner.bank import HashBank
    from scanner.errors import ScannerError

    try:
        with HashBank(args.bank, create=False) as bank:
            rows = bank.entries(algorithm=args.algo, limit=args.limit or None, offset=args.offset)
    except ScannerError as exc:
        return _err(str(exc))
    for e in rows:
        if args.json:
            print(json.dumps(e.to_json()))
        else:
            print(f"{e.id}\t{e.algorithm}\t{e.hash}\tq={e.quality}\t{e.label}\t{e.source}\t"
                  f"sources={','.join(e.sources) or '-'}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from scanner.bank import HashBank
    from scanner.errors import ScannerError

    try:
        with HashBank(args.bank, create=False) as bank:
            stats = bank.stats(now=int(time.time()))
    except ScannerError as exc:
        return _err(str(exc))
    for key in ("first_added", "last_added"):
        stats[f"{key}_at"] = _iso(stats.get(key))
    print(json.dumps(stats))
    return 0


def _iso(seconds: object) -> str | None:
    """Unix seconds as ISO 8601 in UTC (``2026-11-23T14:05:00Z``), None for an empty bank."""
    if not isinstance(seconds, int | float):
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
