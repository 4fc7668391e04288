"""`pocketscan research ...`: the research toolkit's command line.

Every evaluation command takes the user's folders and ``--out DIR``, is deterministic given ``--seed``,
uses ``--workers`` processes (default: all cores), shows a progress bar on stderr, writes
``results.json``, ``report.md`` and a self-contained ``report.html`` (plots embedded) under ``--out``, and
prints a short summary (or the results as JSON with ``--json``). ``--algo`` accepts any registered hasher
name, repeated or as a comma list (``--algo pdq --algo onnx`` or ``--algo pdq,onnx``) to put algorithms
side by side.

This module stays cheap to import: evaluations, numpy and matplotlib are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from scanner.hashers.spec import PDQ

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry, Handler
    from research.results import Results
    from research.stats import AccountOptions

__all__ = ["register"]

_EPILOG_OUT = "Writes OUT/results.json, OUT/report.md, OUT/report.html (self-contained) and OUT/plots/*.png."


def _wrap(text: str) -> str:
    """Descriptions are shown raw (RawDescriptionHelpFormatter): wrap them for an 80-column terminal."""
    import textwrap

    return textwrap.fill(text, 79)


def _common(p: argparse.ArgumentParser, *, algo: bool = True, algo_default: str = "pdq") -> None:
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for results.json, report.html, report.md"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed: the same seed gives the same results (default 0)"
    )
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: all cores)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if algo:
        p.add_argument(
            "--algo",
            action="append",
            metavar="NAME",
            help="hasher(s) to evaluate: any registered name (pdq, phash, dhash, ahash, onnx...); "
            f"repeat or comma-separate to compare side by side (default {algo_default})",
        )
        p.add_argument(
            "--decode",
            choices=("fast", "exact"),
            default="fast",
            help="image decoding mode, as in the scanner (default fast, what the client uses)",
        )


def _finish(args: argparse.Namespace, results: Results) -> int:
    from research.readable import report_summary
    from research.render import to_jsonable, write_report

    paths = write_report(results, args.out)
    summary = report_summary(results)
    if args.json:
        payload = {
            "command": results.command,
            "summary": summary,
            "data": results.data,
            "meta": results.meta,
            "report": str(paths["html"]),
        }
        print(json.dumps(to_jsonable(payload), indent=1))
    else:
        for line in summary:
            print(line)
        print(f"report: {paths['html']}  (also {paths['md'].name}, {paths['json'].name})")
    return 0


def _guard(fn: Handler) -> Handler:
    """``fn`` with --json implying --quiet, and a bad input as one error line and exit status 2."""

    def wrapper(args: argparse.Namespace) -> int:
        if getattr(args, "json", False):
            args.quiet = True  # --json is for scripts: no progress bar
        try:
            return int(fn(args))
        except (ValueError, FileNotFoundError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"pocketscan research: error: {msg}", file=sys.stderr)
            return 2

    wrapper.__doc__ = fn.__doc__
    return wrapper


def _algos(args: argparse.Namespace) -> list[str]:
    from research.corpus import parse_algos

    return parse_algos(args.algo)


@_guard
def _cmd_generate(args: argparse.Namespace) -> int:
    from research.generate import FAMILIES, generate_corpus
    from research.parallel import progress

    fams = tuple(f.strip() for f in args.families.split(",")) if args.families else tuple(FAMILIES)
    if args.count < 1:
        raise ValueError("--count must be at least 1")
    paths = list(
        progress(
            generate_corpus(
                args.out, args.count, args.seed, workers=args.workers, families=fams, scale=args.scale
            ),
            total=args.count,
            description="generating",
            quiet=args.quiet,
        )
    )
    counts: dict[str, int] = {}
    for p in paths:
        fam = p.rsplit("/", 2)[-2]
        counts[fam] = counts.get(fam, 0) + 1
    if args.json:
        print(json.dumps({"out": args.out, "count": len(paths), "seed": args.seed, "families": counts}))
    else:
        print(
            f"wrote {len(paths)} images under {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    return 0


def _streaming(args: argparse.Namespace) -> bool:
    return bool(
        args.generate
        or args.file_list
        or args.edits
        or args.scheduler
        or args.stream
        or args.max_partitions is not None
        or args.time_limit is not None
        or args.restart
    )


def _cmd_fpr_stream(args: argparse.Namespace) -> int:
    from research.engine import EngineError
    from research.sources import make_plan
    from research.stream import StreamConfig, run_stream

    plan = make_plan(
        folder=args.benign,
        file_list=args.file_list,
        generate=args.generate or 0,
        generate_seed=args.generate_seed,
        generate_scale=args.generate_scale,
        generate_families=tuple(f.strip() for f in args.families.split(",")) if args.families else None,
        edits=args.edits or 0,
        edit_corpus=args.edit_corpus,
        edit_seed=args.seed,
        decode=args.decode,
    )
    cfg = StreamConfig(
        bank=args.bank,
        out=args.out,
        plan=plan,
        algos=_algos(args),
        workers=args.workers,
        scheduler=args.scheduler,
        partition_size=args.partition_size,
        snapshot=not args.no_snapshot,
        keep_cross_duplicates=not args.exclude_cross_duplicates,
        max_partitions=args.max_partitions,
        time_limit=args.time_limit,
        restart=args.restart,
        quiet=args.quiet,
        connect_timeout=args.connect_timeout,
        task_timeout=args.task_timeout,
        account=_account_options(args),
    )
    try:
        results = run_stream(cfg, seed=args.seed)
    except EngineError as exc:
        raise ValueError(str(exc)) from exc
    return _finish(args, results)


@_guard
def _cmd_fpr(args: argparse.Namespace) -> int:
    from research.evals.fpr import FprConfig, run

    if _streaming(args):
        return _cmd_fpr_stream(args)
    if not args.benign:
        raise ValueError("give the benign images: --benign DIR, --file-list FILE, --generate N or --edits N")
    cfg = FprConfig(
        bank=args.bank,
        benign=args.benign,
        out=args.out,
        algos=_algos(args),
        workers=args.workers,
        decode=args.decode,
        keep_cross_duplicates=not args.exclude_cross_duplicates,
        snapshot=not args.no_snapshot,
        quiet=args.quiet,
        account=_account_options(args),
    )
    return _finish(args, run(cfg, seed=args.seed))


def _account_options(args: argparse.Namespace) -> AccountOptions:
    """``research fpr``'s account-arithmetic flags (each unset one keeps its default)."""
    from research.stats import AccountOptions

    given = {"images_per_year": args.images_per_year, "thresholds": args.account_threshold,
             "accounts": args.accounts}
    return AccountOptions(configured_threshold=_configured_threshold(args),
                          **{k: v for k, v in given.items() if v is not None})


def _configured_threshold(args: argparse.Namespace) -> int | None:
    """``--report-threshold``, else the ``report-threshold`` of ``--profile`` (or ``$POCKETSCAN_PROFILE``)."""
    import os
    from pathlib import Path

    if args.report_threshold is not None:
        if not 1 <= args.report_threshold <= 100:
            raise ValueError("--report-threshold must be between 1 and 100")
        return int(args.report_threshold)
    root = args.profile or os.environ.get("POCKETSCAN_PROFILE")
    if not root:
        return None
    from client.config import load_settings
    from client.locations import Profile

    settings_file = Profile(Path(root)).settings_file
    if not settings_file.exists():
        if args.profile:
            raise ValueError(f"no settings in {root}: not a pocketscan profile")
        return None
    return load_settings(settings_file).report_threshold


@_guard
def _cmd_calibrate(args: argparse.Namespace) -> int:
    from research.evals.calibrate import CalibrateConfig, run

    cfg = CalibrateConfig(
        out=args.out,
        calibrate_on=args.calibrate_on,
        test_on=args.test_on,
        split=args.split,
        calibrate_fraction=args.calibrate_fraction,
        algos=_algos(args) if args.algo else ["pdq", "onnx"],
        transforms=[t.strip() for t in args.transforms.split(",") if t.strip()] if args.transforms else None,
        precision=args.precision,
        snapshot=not args.no_snapshot,
        quiet=args.quiet,
    )
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_brief(args: argparse.Namespace) -> int:
    from research.brief import load_runs, write_brief

    runs = load_runs([d for group in args.sources for d in group])
    path = write_brief(runs, args.out, title=args.title)
    if args.json:
        print(json.dumps({"brief": str(path), "runs": [str(r.folder) for r in runs]}))
    else:
        print(f"brief: {path}  (from {len(runs)} run(s); every number links to its run)")
    return 0


@_guard
def _cmd_robustness(args: argparse.Namespace) -> int:
    from research.evals.robustness import RobustnessConfig, run

    algos = _algos(args) if args.algo else None  # default: PDQ and the three 64-bit baselines
    cfg = RobustnessConfig(
        bank=args.bank,
        out=args.out,
        algos=algos,
        workers=args.workers,
        decode=args.decode,
        snapshot=not args.no_snapshot,
        quiet=args.quiet,
        limit=args.limit,
    )
    if args.transforms:
        cfg.transforms = [t.strip() for t in args.transforms.split(",") if t.strip()]
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_tradeoffs(args: argparse.Namespace) -> int:
    from research.evals.tradeoffs import TradeoffsConfig, run

    cfg = TradeoffsConfig(
        bank_size=args.bank_size,
        out=args.out,
        bank=args.bank,
        benign=args.benign,
        algos=_algos(args),
        workers=args.workers,
        decode=args.decode,
        quiet=args.quiet,
        samples=args.samples,
        privacy=not args.no_privacy,
        privacy_queries=args.privacy_queries,
    )
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_evade(args: argparse.Namespace) -> int:
    from research.evals.evade import EvadeConfig, run

    cfg = EvadeConfig(
        bank=args.bank,
        out=args.out,
        algos=_algos(args),
        workers=args.workers,
        decode=args.decode,
        method=args.method,
        max_queries=args.max_queries,
        limit=args.limit,
        quiet=args.quiet,
        snapshot=not args.no_snapshot,
    )
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_collide(args: argparse.Namespace) -> int:
    from research.evals.collide import CollideConfig, run

    cfg = CollideConfig(
        target=args.target,
        source=args.source,
        out=args.out,
        algos=_algos(args),
        decode=args.decode,
        max_queries=args.max_queries,
        workers=args.workers,
        quiet=args.quiet,
    )
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_recover(args: argparse.Namespace) -> int:
    from research.evals.recover import RecoverConfig, run

    if args.budget_seconds <= 0:
        raise ValueError("--budget-seconds must be positive")
    cfg = RecoverConfig(
        snapshot=args.snapshot,
        out=args.out,
        bank=args.bank,
        budget_seconds=args.budget_seconds,
        distance=args.distance,
        oprf=args.oprf,
        profile=args.profile,
        max_partials=args.max_partials,
        quiet=args.quiet,
    )
    from scanner.errors import ScannerError

    try:
        results = run(cfg, seed=args.seed)
    except ScannerError as exc:
        raise ValueError(str(exc)) from None
    return _finish(args, results)


@_guard
def _cmd_overhead(args: argparse.Namespace) -> int:
    from research.evals.overhead import OverheadConfig, run

    cfg = OverheadConfig(
        photos=args.photos,
        out=args.out,
        bank_size=args.bank_size,
        repeats=args.repeats,
        limit=args.limit,
        quiet=args.quiet,
        workers=args.workers,
    )
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_authority_view(args: argparse.Namespace) -> int:
    from research.evals.authority_view import AuthorityViewConfig, run

    cfg = AuthorityViewConfig(store=args.store, out=args.out, quiet=args.quiet)
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_relay_view(args: argparse.Namespace) -> int:
    from research.evals.relay_view import RelayViewConfig, run

    cfg = RelayViewConfig(log=args.log, out=args.out, quiet=args.quiet)
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_threshold(args: argparse.Namespace) -> int:
    from research.evals.threshold import ThresholdConfig, p_from_fpr_results, parse_rate, run

    if (args.p is None) == (args.fpr_results is None):
        raise ValueError("give the per-image false-match rate: --p K/N (or a rate) or --fpr-results FILE")
    p, low, high, source = (parse_rate(args.p) if args.p is not None
                            else p_from_fpr_results(args.fpr_results, args.algo))
    for name in ("accounts", "mc_accounts", "eval_accounts"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.voucher_delay <= 7 * 86_400:
        raise ValueError("--voucher-delay must be between 0 and 604800 seconds")
    if args.period_days <= 0 or any(d <= 0 for d in args.images_per_day or []):
        raise ValueError("--period-days and --images-per-day must be positive")
    if any(not 1 <= t <= 100 for t in args.threshold or []):
        raise ValueError("--threshold must be between 1 and 100")
    if any(not 0.0 <= q <= 1.0 for q in args.synthetic_rate or []):
        raise ValueError("--synthetic-rate must be between 0 and 1")
    cfg = ThresholdConfig(out=args.out, p=p, p_low=low, p_high=high, p_source=source, accounts=args.accounts,
                          period_days=args.period_days, mc_accounts=args.mc_accounts,
                          eval_accounts=args.eval_accounts, eval_threshold=args.eval_threshold,
                          eval_images_per_day=args.eval_images_per_day, voucher_delay=args.voucher_delay,
                          quiet=args.quiet)
    if args.images_per_day:
        cfg.images_per_day = args.images_per_day
    if args.threshold:
        cfg.thresholds = args.threshold
    if args.synthetic_rate:
        cfg.synthetic_rates = args.synthetic_rate
    if args.opening_threshold:
        if any(not 1 <= t <= 100 for t in args.opening_threshold):
            raise ValueError("--opening-threshold must be between 1 and 100")
        cfg.opening_thresholds = args.opening_threshold
    cfg.configured_threshold = _configured_threshold(args)
    return _finish(args, run(cfg, seed=args.seed))


@_guard
def _cmd_sensitive(args: argparse.Namespace) -> int:
    from research.evals.sensitive import SensitiveConfig, run
    from scanner.classifiers import ClassifierError

    if args.generated < 0 or args.skin < 0:
        raise ValueError("--generated and --skin must not be negative")
    cfg = SensitiveConfig(benign=args.benign, bank=args.bank, out=args.out, classifier=args.classifier,
                          threshold=args.threshold, generated=args.generated, skin=args.skin,
                          photo_families=args.photo_family, repeat=args.repeat,
                          timing_limit=args.timing_limit, threads=args.threads, quiet=args.quiet)
    try:
        results = run(cfg, seed=args.seed)
    except ClassifierError as exc:
        print(f"pocketscan research: error: {exc}", file=sys.stderr)
        return 2
    return _finish(args, results)


def _add_generate(research: CommandRegistry) -> None:
    """Add ``research generate``."""
    p = research.command(
        "generate",
        _cmd_generate,
        help="generate benign images that scanners confuse (chat, text, charts, flat, ...)",
        epilog="Images go to OUT/<family>/ as PNG; the same --seed and --count give the same bytes.",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--count", type=int, default=140, metavar="N", help="number of images (default 140)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--families",
        metavar="LIST",
        help="comma list of chat,text,chart,flat,gradient,document,meme (default: all)",
    )
    p.add_argument("--workers", type=int, default=None, metavar="N")
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="draw at this scale (default 1.0: sides of 360-760 px; 0.35: about 130-360 px)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _add_fpr(research: CommandRegistry) -> None:
    """Add ``research fpr``, its streaming options and its account arithmetic."""
    p = research.command(
        "fpr",
        _cmd_fpr,
        help="false-match rate of the scanner on benign images, with CIs",
        description=_wrap(
            "Build a bank and a signed snapshot from --bank, scan every image of "
            "--benign, report per-query and per-pair false-match rates with Wilson "
            "95% intervals at several thresholds, raw distance vs snapshot verdict, "
            "every false match side by side, breakdowns by quality and family "
            "(sub-folders), and account-level arithmetic with its assumptions."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--bank", required=True, metavar="DIR", help="folder of bank images")
    p.add_argument("--benign", metavar="DIR", help="folder (tree) of benign images; sub-folders are families")
    _common(p)
    p.add_argument(
        "--no-snapshot", action="store_true", help="skip the snapshot verdict (raw distances only)"
    )
    _add_fpr_streaming(p)
    _add_fpr_accounts(p)


def _add_fpr_streaming(p: argparse.ArgumentParser) -> None:
    """``research fpr``'s streaming options (Dask partitions, on-disk store, checkpoint)."""
    g = p.add_argument_group(
        "streaming runs (any size; Dask tasks over partitions, on-disk store, resumable checkpoint)",
        "Any option of this group streams: the benign images are produced and hashed partition by partition "
        "on Dask workers, hashes go to OUT/store/*.npy, and a stopped run resumes from "
        "its checkpoint (OUT/store/checkpoint.json, partitions.jsonl) when the same command is given again.",
    )
    _add_fpr_sources(g)
    _add_fpr_execution(g)


def _add_fpr_sources(g: argparse._ArgumentGroup) -> None:
    """Where a streaming ``research fpr`` run takes its benign images from."""
    g.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="add N generated confuser images (the `research generate` families, drawn by index)",
    )
    g.add_argument(
        "--generate-seed",
        type=int,
        default=1_000_003,
        metavar="S",
        help="seed of the generated images (default 1000003, so they never repeat a bank made by "
        "`research generate` with a small seed)",
    )
    g.add_argument(
        "--generate-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="draw generated images at this scale (default 1.0: sides of 360-760 px; 0.35: about "
        "130-360 px, cheaper)",
    )
    g.add_argument("--families", metavar="LIST", help="generated families (comma list; default: all)")
    g.add_argument("--file-list", metavar="FILE", help="add the images named in FILE (one path per line)")
    g.add_argument(
        "--edits",
        type=int,
        metavar="N",
        help="add N random edits (crop, resize, one transform) of the images of --edit-corpus",
    )
    g.add_argument("--edit-corpus", metavar="DIR", help="images to edit for --edits")
    g.add_argument("--stream", action="store_true", help="stream a --benign folder too")


def _add_fpr_execution(g: argparse._ArgumentGroup) -> None:
    """How a streaming ``research fpr`` run is scheduled, bounded and resumed."""
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler to use (e.g. tcp://10.0.0.5:8786); default: a local cluster of "
        "--workers processes on this machine",
    )
    g.add_argument(
        "--partition-size",
        type=int,
        default=1000,
        metavar="N",
        help="images per task and per checkpoint step (default 1000)",
    )
    g.add_argument(
        "--max-partitions",
        type=int,
        metavar="N",
        help="stop after N partitions in this invocation (resume later)",
    )
    g.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop submitting partitions after this many seconds (resume later)",
    )
    g.add_argument("--restart", action="store_true", help="discard OUT's checkpoint and start again")
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up reaching the scheduler or starting the local cluster after this long (default 30)",
    )
    g.add_argument(
        "--task-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="fail when no partition finishes for this long (default 3600)",
    )


def _add_fpr_accounts(p: argparse.ArgumentParser) -> None:
    """``research fpr``'s cross-duplicate and account-arithmetic options."""
    p.add_argument(
        "--exclude-cross-duplicates",
        action="store_true",
        help="drop benign files byte-identical to a bank file (they are true matches)",
    )
    p.add_argument(
        "--images-per-year",
        type=int,
        action="append",
        metavar="N",
        help="account arithmetic: images an account sends per year (repeatable; default 1000, 10000, 100000)",
    )
    p.add_argument(
        "--account-threshold",
        type=int,
        action="append",
        metavar="T",
        help="account arithmetic: matches before an account is flagged (repeatable; default 1, 2, 5, 10, 30)",
    )
    p.add_argument("--accounts", type=int, metavar="N", help="number of accounts (default 1e9)")
    p.add_argument("--profile", metavar="DIR", default=None,
                   help="account arithmetic also uses this profile's report-threshold "
                        "(default: $POCKETSCAN_PROFILE when set)")
    p.add_argument("--report-threshold", type=int, metavar="T", default=None,
                   help="account arithmetic also uses this threshold (overrides --profile)")


def _add_brief(research: CommandRegistry) -> None:
    """Add ``research brief``."""
    p = research.command(
        "brief",
        _cmd_brief,
        help="one self-contained HTML page in plain words from other research runs",
        description=_wrap(
            "Read the results.json of each --from folder (fpr, robustness, calibrate, attacks evade and "
            "collide, relay-view...) and write OUT/brief.html: false matches per image and per account "
            "with intervals and sample sizes, recall per edit, the cost of evasion, what the relay and "
            "the authority learn. Every number links to the run that produced it."
        ),
        epilog="Writes OUT/brief.html (no external resources) and OUT/brief.json (the runs it cites).",
    )
    p.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="DIR",
        help="a folder written by another research command (repeatable, or several after one --from)",
        nargs="+",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--title", metavar="TEXT", help="page title")
    p.add_argument("--json", action="store_true")


def _add_calibrate(research: CommandRegistry) -> None:
    """Add ``research calibrate``."""
    p = research.command(
        "calibrate",
        _cmd_calibrate,
        help="choose thresholds on a calibration split and report them on a disjoint test split",
        description=_wrap(
            "Fit every threshold the tools choose (each hasher's distance by three rules: its fixed "
            "rule, PDQ's false-match rate at 31 bits, and perception's precision target; the "
            "snapshot's minimum votes) on --calibrate-on, then measure recall, precision and false "
            "matches with those thresholds on --test-on (or split one folder with --split)."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--calibrate-on", metavar="DIR", help="images to choose thresholds on")
    p.add_argument("--test-on", metavar="DIR", help="disjoint images to report them on")
    p.add_argument("--split", metavar="DIR", help="split this folder deterministically instead (by --seed)")
    p.add_argument(
        "--calibrate-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="share of --split used for calibration (default 0.5)",
    )
    p.add_argument(
        "--precision",
        type=float,
        default=0.9999,
        metavar="P",
        help="precision target of the precision rule (default 0.9999, perception's convention)",
    )
    p.add_argument("--transforms", metavar="LIST", help="comma list of transform names (default: all)")
    p.add_argument("--no-snapshot", action="store_true", help="skip the snapshot's minimum-votes calibration")
    _common(p)


def _add_sensitive(research: CommandRegistry) -> None:
    """Add ``research sensitive``."""
    p = research.command(
        "sensitive",
        _cmd_sensitive,
        help="false positives of the sensitive-content classifier on benign images, beside PDQ's",
        description=_wrap(
            "Rate every benign image with the on-device classifier (NudeNet by default) and match it "
            "with PDQ against a bank built from --bank, on the same decoded pixels; report both false-"
            "positive rates per family (sub-folders) with Wilson 95% intervals, a threshold sweep, the "
            "highest-scoring benign images, and milliseconds per image beside PDQ on the photos."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--benign", required=True, action="append", metavar="DIR",
                   help="folder of benign images, sub-folders are families (repeatable)")
    p.add_argument("--bank", required=True, metavar="DIR", help="folder of bank images for PDQ matching")
    p.add_argument("--classifier", default="nudenet", metavar="NAME|PATH",
                   help="nudenet (default) or an .onnx model with its JSON sidecar")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="override the classifier's threshold (default: the model's own, nudenet 0.5)")
    p.add_argument("--generated", type=int, default=0, metavar="N",
                   help="also rate N generated confusers (research generate's families; default 0)")
    p.add_argument("--skin", type=int, default=0, metavar="N",
                   help="also rate N skin-tone-heavy synthetic images (light, medium, dark; default 0)")
    p.add_argument("--photo-family", action="append", metavar="NAME",
                   help="families timed for the cost per image (default: those of the --benign folders)")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="timing: best of N (default 3)")
    p.add_argument("--timing-limit", type=int, default=60, metavar="N",
                   help="timing: at most N photos (default 60)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="onnxruntime intra-op threads (default 1, like the client)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for results.json, report.html, report.md")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images (default 0)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_robustness(research: CommandRegistry) -> None:
    """Add ``research robustness``."""
    p = research.command(
        "robustness",
        _cmd_robustness,
        help="recall of the scanner under edits (JPEG, resize, crop, rotate, overlay, ...)",
        description=_wrap(
            "Apply each transform to every bank image and report recall per transform "
            "for each hasher (PDQ with and without dihedral), and the snapshot's "
            "verdict, with Wilson 95% intervals and distance histograms."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--bank", required=True, metavar="DIR", help="folder of bank images")
    _common(p, algo_default="pdq,phash,dhash,ahash: PDQ and the three 64-bit baselines")
    p.add_argument("--transforms", metavar="LIST", help="comma list of transform names (default: all)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N bank images")
    p.add_argument("--no-snapshot", action="store_true", help="skip the snapshot verdict")


def _add_tradeoffs(research: CommandRegistry) -> None:
    """Add ``research tradeoffs``."""
    p = research.command(
        "tradeoffs",
        _cmd_tradeoffs,
        help="snapshot size vs recall vs false-match rate across LSH parameters",
        epilog=_EPILOG_OUT,
    )
    p.add_argument(
        "--bank-size", type=int, required=True, metavar="N", help="bank size to size snapshots for"
    )
    p.add_argument("--bank", metavar="DIR", help="also measure on these images (edited copies as queries)")
    p.add_argument("--benign", metavar="DIR", help="benign images for the measured false-match rate")
    p.add_argument(
        "--samples",
        type=int,
        default=2000,
        metavar="N",
        help="generated query pairs per distance (default 2000)",
    )
    p.add_argument(
        "--no-privacy",
        action="store_true",
        help="skip the privacy axis (offline vs OPRF-keyed snapshots, enumeration cost, OPRF latency)",
    )
    p.add_argument(
        "--privacy-queries",
        type=int,
        default=12,
        metavar="N",
        help="images (random hashes, 8 variants each) timed per mode on the privacy axis (default 12)",
    )
    _common(p)


def _add_evade(attacks: CommandRegistry) -> None:
    """Add ``research attacks evade``."""
    p = attacks.command(
        "evade",
        _cmd_evade,
        help="perturb bank images until the scanner no longer matches them",
        description=_wrap(
            "For each bank image, find a small perturbation after which the hash is "
            f"more than the match threshold away (PDQ: {PDQ.match_distance} bits) and the snapshot no "
            "longer matches; success is judged after a PNG save and reload. Reports "
            "success rate with CI, queries, PSNR/SSIM/L2 and before/after images."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--bank", required=True, metavar="DIR", help="folder of bank images to attack")
    _common(p)
    p.add_argument(
        "--method",
        choices=("auto", "whitebox", "blackbox"),
        default="auto",
        help="whitebox: PDQ's exact linear model (PDQ only); blackbox: hash-only NES (any hasher); "
        "auto: whitebox for PDQ, blackbox otherwise",
    )
    p.add_argument(
        "--max-queries",
        type=int,
        default=None,
        metavar="N",
        help="hasher calls allowed per image (default 40 whitebox, 600 blackbox)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="attack only the first N bank images")
    p.add_argument("--no-snapshot", action="store_true", help="skip the snapshot verdicts")


def _add_collide(attacks: CommandRegistry) -> None:
    """Add ``research attacks collide``."""
    p = attacks.command(
        "collide",
        _cmd_collide,
        help="craft an innocent-looking image whose hash lands near a target's",
        description=_wrap(
            "Perturb --source until its PDQ hash is within the match threshold of "
            f"--target's hash (quality >= {PDQ.min_quality}), judged after a PNG save and reload. "
            "Reports success, distance reached and distortion."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--target", required=True, metavar="IMG", help="image whose hash is the target")
    p.add_argument(
        "--source",
        required=True,
        action="append",
        metavar="IMG",
        help="innocuous image to perturb (repeatable)",
    )
    _common(p)
    p.add_argument("--max-queries", type=int, default=40, metavar="N")


def _add_recover(attacks: CommandRegistry) -> None:
    """Add ``research attacks recover``."""
    p = attacks.command(
        "recover",
        _cmd_recover,
        help="recover bank hashes from a snapshot file by enumerating and stitching its LSH keys",
        description=_wrap(
            "Digest every key of every table of SNAPSHOT (L x 2^k), keep the keys the Bloom filter holds and "
            "stitch them across tables into whole hashes. Reports the hashes recovered (exact and within "
            "--distance bits of --bank), digests computed, time, and past --budget-seconds the core-hours of "
            "the full enumeration extrapolated from the measured rate. For an OPRF-keyed snapshot, --oprf "
            "URL pays one service evaluation per key until the service refuses."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot file (no key needed: the attacker's view)")
    p.add_argument("--bank", metavar="BANK", help="the real bank (SQLite) to score the recovered hashes")
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=600.0,
        metavar="S",
        help="enumeration time allowed before extrapolating, and as much for stitching (default 600)",
    )
    p.add_argument(
        "--distance", type=int, default=PDQ.match_distance, metavar="D",
        help="count candidates within D bits of --bank (default: %(default)s, PDQ's match distance)"
    )
    p.add_argument("--oprf", metavar="URL", help="OPRF service (ws://HOST:PORT) for OPRF-keyed snapshots")
    p.add_argument("--profile", metavar="DIR", help="with --oprf: authenticate as this profile's account")
    p.add_argument(
        "--max-partials",
        type=int,
        default=1_000_000,
        metavar="N",
        help="stitching works in batches of at most N partial hashes (about 300 bytes each) "
        "(default 1000000)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for results.json, report.html, report.md"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (recorded; the attack is deterministic)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_overhead(research: CommandRegistry) -> None:
    """Add ``research overhead``."""
    p = research.command(
        "overhead",
        _cmd_overhead,
        help="per-image time to decode, hash, match, encrypt and upload, with and without "
        "scanning; snapshot download size per client per update",
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--photos", required=True, metavar="DIR", help="folder of the user's photos")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--bank-size",
        type=int,
        default=100_000,
        metavar="N",
        help="bank size of the snapshot used for matching (default 100000)",
    )
    p.add_argument("--repeats", type=int, default=3, metavar="N", help="timed repetitions per image")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N photos")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="ignored for timing (measured on one core, as a phone would); kept for symmetry",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _add_relay_view(research: CommandRegistry) -> None:
    """Add ``research relay-view``."""
    p = research.command(
        "relay-view",
        _cmd_relay_view,
        help="what the relay operator learned from a session's metadata log, and what not",
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--log", required=True, metavar="FILE", help="the relay's metadata log (JSON Lines)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _add_threshold(research: CommandRegistry) -> None:
    """Add ``research threshold``."""
    p = research.command(
        "threshold",
        _cmd_threshold,
        help="threshold reporting: falsely opened accounts per year, and what the authority sees below t",
        description=_wrap(
            "From a per-image false-match rate p (a `research fpr` results.json, or given as K/N or a "
            "rate) compute, for N accounts, images per day and thresholds t, the expected falsely opened "
            "accounts per year with 95% intervals carried from p's interval (key periods of --period-days "
            "days, as the client), checked by a Monte Carlo run; then build vouchers with the client's own "
            "code for matching and non-matching accounts below t and measure how well the authority tells "
            "them apart from voucher counts, counts and image volume, and timing, with and without "
            "synthetic vouchers (ROC AUC with bootstrap intervals)."
        ),
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--p", metavar="K/N|RATE", default=None,
                   help="per-image false-match rate: K false matches of N images (Wilson interval) or a rate")
    p.add_argument("--fpr-results", metavar="FILE", default=None,
                   help="take p and its interval from a `research fpr` results.json")
    p.add_argument("--algo", default="pdq", help="algorithm inside --fpr-results (default pdq)")
    p.add_argument("--accounts", type=int, default=1_000_000_000, metavar="N",
                   help="number of accounts (default 1e9)")
    p.add_argument("--images-per-day", type=float, action="append", metavar="D",
                   help="images an account sends a day (repeatable; default 5, 20, 100)")
    p.add_argument("--threshold", type=int, action="append", metavar="T",
                   help="thresholds to tabulate (repeatable; default 1, 2, 3, 5, 10, 20, 30)")
    p.add_argument("--period-days", type=float, default=30.0, metavar="DAYS",
                   help="key period: vouchers of one period combine (default 30, the client's)")
    p.add_argument("--profile", metavar="DIR", default=None,
                   help="mark this profile's report-threshold as configured (default: $POCKETSCAN_PROFILE)")
    p.add_argument("--report-threshold", type=int, metavar="T", default=None,
                   help="the configured threshold (overrides --profile)")
    p.add_argument("--mc-accounts", type=int, default=100_000, metavar="N",
                   help="accounts in the Monte Carlo check (default 100000)")
    p.add_argument("--eval-accounts", type=int, default=400, metavar="N",
                   help="accounts in the distinguishability evaluation (default 400)")
    p.add_argument("--eval-threshold", type=int, default=None, metavar="T",
                   help="t in the distinguishability evaluation (default: the configured t, else 10)")
    p.add_argument("--eval-images-per-day", type=float, default=10.0, metavar="D",
                   help="median images/day of the evaluated accounts (log-normal; default 10)")
    p.add_argument("--synthetic-rate", type=float, action="append", metavar="Q",
                   help="synthetic voucher rates to evaluate (repeatable; default 0, 0.01, 0.05, 0.2)")
    p.add_argument("--voucher-delay", type=float, default=3600.0, metavar="SECONDS",
                   help="also measure timing with vouchers held this long on average (default 3600)")
    p.add_argument("--opening-threshold", type=int, action="append", metavar="T",
                   help="t of the opening-cost measurement (repeatable; default 3 and 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _add_authority_view(research: CommandRegistry) -> None:
    """Add ``research authority-view``."""
    p = research.command(
        "authority-view",
        _cmd_authority_view,
        help="what the authority learns from each report, submission and appeal (from its store)",
        epilog=_EPILOG_OUT,
    )
    p.add_argument("--store", required=True, metavar="STORE.sqlite", help="the authority store")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _add_attacks(research: CommandRegistry) -> None:
    """Add the ``research attacks`` group and its commands."""
    attacks = research.group("attacks", help="evasion, collision and bank-recovery attacks")
    for add in (_add_evade, _add_collide, _add_recover):
        add(attacks)


#: One function per ``research`` subcommand, in the order ``pocketscan research --help`` lists them.
_SUBCOMMANDS: tuple[Callable[[CommandRegistry], None], ...] = (
    _add_generate,
    _add_fpr,
    _add_brief,
    _add_calibrate,
    _add_sensitive,
    _add_robustness,
    _add_tradeoffs,
    _add_attacks,
    _add_overhead,
    _add_relay_view,
    _add_threshold,
    _add_authority_view,
)


def register(registry: CommandRegistry) -> None:
    """Add the ``research`` command group."""
    research = registry.group("research", help="measure false matches, robustness, attacks and trade-offs")
    for add in _SUBCOMMANDS:
        add(research)
