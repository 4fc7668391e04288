"""Streaming false-match runs of any size: partitions as Dask tasks, a columnar store, checkpoints.

The benign side is a :class:`research.sources.Plan` (files, generated confusers, corpus edits) cut into
partitions of ``partition_size`` consecutive indices. Each partition is one task (:func:`process_partition`)
that produces its images, hashes them (PDQ's exact path, with the 8 dihedral variants) and matches them
against the bank: vectorised Hamming distances to every bank hash (nearest, with and without dihedral, plus
the histogram of all pair distances) and the snapshot's votes through the device matcher
(:meth:`scanner.matcher.Matcher.votes_many`). Tasks return fixed-width arrays; the driver writes them into
the :class:`Store`, one ``.npy`` memmap per column under ``OUT/store/`` (numpy, no extra dependency,
readable with ``numpy.load(path, mmap_mode="r")``), flushes, then appends the partition to the checkpoint,
``OUT/store/partitions.jsonl`` (the run's identity is in ``OUT/store/checkpoint.json``). A run that stops
(Ctrl-C, ``--max-partitions``, ``--time-limit``, a crash) resumes from the checkpoint with the same command;
a checkpoint of a different run is refused.

The report is computed from the store in chunks (:mod:`research.stream_report`), so memory stays bounded
by the partition size and the chunk size, not by the number of images (the store itself is on disk: about 330
bytes per image with PDQ's dihedral variants). Every figure is an integer count summed over partitions,
so the same seed gives the same results with 1, 2 or 200 workers, in any completion order.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.sources import Plan

__all__ = [
    "BankContext",
    "PartitionJob",
    "PartitionResult",
    "Store",
    "StreamConfig",
    "bound",
    "one_sided_upper",
    "process_partition",
    "run_stream",
]

CHECKPOINT_VERSION = 1
SNAPSHOT_IDENTITY_KEYS = (
    "entries", "tables", "bits", "min_votes", "probe_radius", "bloom_bits", "bloom_hashes"
)
MAX_FALSE_MATCHES_LISTED = 10_000
"""results.json lists at most this many false matches (all are counted)."""


@dataclass
class StreamConfig:
    bank: str
    out: str
    plan: Plan
    algos: list[str] = field(default_factory=lambda: ["pdq"])
    workers: int | None = None
    scheduler: str | None = None
    partition_size: int = 1000
    snapshot: bool = True
    keep_cross_duplicates: bool = True
    max_partitions: int | None = None
    time_limit: float | None = None
    restart: bool = False
    quiet: bool = True
    task_timeout: float = 3600.0
    connect_timeout: float = 60.0
    account: stats.AccountOptions = field(default_factory=stats.AccountOptions)


@dataclass(frozen=True)
class PartitionJob:
    index: int
    start: int
    stop: int
    paths: tuple[str, ...] | None  # file items of this partition (None: generated or edited images)


@dataclass
class AlgoBank:
    """What every task needs to match one algorithm (sent once to each worker)."""

    bits: int
    threshold: int
    min_quality: int
    dihedral: bool
    hashes: np.ndarray  # (M, nb) scannable bank hashes
    snapshot: bytes | None
    public_key: bytes | None
    snapshot_now: float
    snapshot_params: dict[str, int] | None = None
    """The snapshot's matching parameters (tables, bits, votes, ...): part of a checkpoint's identity."""


@dataclass
class BankContext:
    plan: Plan
    algos: dict[str, AlgoBank]


@dataclass
class PartitionResult:
    index: int
    start: int
    columns: dict[str, np.ndarray]
    pair_hist: dict[str, np.ndarray]
    errors: list[tuple[int, str]]
    seconds: dict[str, float]
    max_rss_kb: int


def _max_rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


_MATCHERS: dict[bytes, Any] = {}


def _matcher(bank: AlgoBank) -> Any:
    """The device matcher of this snapshot, loaded once per worker process."""
    from scanner.matcher import Matcher

    assert bank.snapshot is not None and bank.public_key is not None
    key = hashlib.sha256(bank.snapshot).digest()
    if key not in _MATCHERS:
        m = Matcher(bank.public_key)
        m.load(bank.snapshot, now=bank.snapshot_now)
        _MATCHERS.clear()
        _MATCHERS[key] = m
    return _MATCHERS[key]


VOTE_CHUNK = 64
"""Queries per batch of snapshot lookups: a batch holds tables x variants Bloom probes per query (384 x 8 x 10
64-bit offsets for a small bank's snapshot), so batches of 64 keep a worker near 100 MB."""


def _votes(bank: AlgoBank, hashes: np.ndarray) -> np.ndarray:
    """The snapshot's votes for each row of ``hashes`` ((N, nb) or (N, 8, nb)), in bounded batches."""
    m = _matcher(bank)
    out = np.empty(len(hashes), np.int64)
    for s in range(0, len(hashes), VOTE_CHUNK):
        out[s : s + VOTE_CHUNK] = m.votes_many(hashes[s : s + VOTE_CHUNK])[0]
    return out


def _empty_columns(ctx: BankContext, n: int) -> dict[str, np.ndarray]:
    """Hash and quality columns (and dihedral variants) of ``n`` rows for each algorithm."""
    cols: dict[str, np.ndarray] = {}
    for algo, b in ctx.algos.items():
        nb = b.bits // 8
        cols[f"{algo}.hash"] = np.zeros((n, nb), np.uint8)
        cols[f"{algo}.quality"] = np.zeros(n, np.uint8)
        if b.dihedral:
            cols[f"{algo}.dihedral"] = np.zeros((n, 8, nb), np.uint8)
    return cols


def _digest(path: str | None, rgb: np.ndarray) -> int:
    """First 8 bytes of the SHA-256 of the file, or of the pixels of a produced image."""
    if path is not None:
        with open(path, "rb") as f:
            return int.from_bytes(hashlib.sha256(f.read()).digest()[:8], "big")
    return int.from_bytes(hashlib.sha256(np.ascontiguousarray(rgb).data).digest()[:8], "big")


def _hash_row(ctx: BankContext, cols: dict[str, np.ndarray], k: int, rgb: np.ndarray) -> None:
    """Row ``k`` of each algorithm's hash, quality and dihedral columns (ValueError: the image is refused)."""
    from research.corpus import get_cached_hasher

    for algo, b in ctx.algos.items():
        r = get_cached_hasher(algo).hash_rgb(rgb, dihedral=b.dihedral)
        cols[f"{algo}.hash"][k] = np.frombuffer(r.hash, np.uint8)
        cols[f"{algo}.quality"][k] = int(r.quality)
        if b.dihedral and r.dihedral is not None:
            cols[f"{algo}.dihedral"][k] = np.frombuffer(b"".join(r.dihedral), np.uint8).reshape(8, -1)


def _produce_and_hash(
    job: PartitionJob, ctx: BankContext, cols: dict[str, np.ndarray]
) -> tuple[list[tuple[int, str]], float, float]:
    """Fill ``status``, ``family``, ``digest`` and the hash columns; returns (errors, load s, hash s)."""
    from research.sources import load_item

    plan = ctx.plan
    fam_index = {f: i for i, f in enumerate(plan.families)}
    status, family, digest = cols["status"], cols["family"], cols["digest"]
    errors: list[tuple[int, str]] = []
    t_load = t_hash = 0.0
    for k in range(job.stop - job.start):
        gi = job.start + k
        family[k] = fam_index[plan.family_of(gi)]
        t0 = time.perf_counter()
        path = job.paths[k] if job.paths is not None else None
        rgb = load_item(plan, gi, path)
        t1 = time.perf_counter()
        t_load += t1 - t0
        if isinstance(rgb, str):
            status[k] = 2
            errors.append((gi, rgb))
            continue
        digest[k] = _digest(path, rgb)
        try:
            _hash_row(ctx, cols, k, rgb)
        except ValueError as exc:
            status[k] = 2
            errors.append((gi, f"{exc}"))
            continue
        status[k] = 1
        t_hash += time.perf_counter() - t1
    return errors, t_load, t_hash


def _match(algo: str, b: AlgoBank, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Nearest-bank and snapshot-vote columns of one algorithm; returns its pair-distance histogram."""
    from research.evals.common import nearest, pair_histogram

    ok = (cols["status"] == 1) & (cols[f"{algo}.quality"] >= b.min_quality)
    q = cols[f"{algo}.hash"][ok]
    qd = cols[f"{algo}.dihedral"][ok] if b.dihedral else None
    d_plain, i_plain = nearest(q, b.hashes)
    d_dih, i_dih = nearest(q, b.hashes, query_dihedral=qd) if qd is not None else (d_plain, i_plain)
    for name, values, dtype in (
        ("d_plain", d_plain, np.int16),
        ("i_plain", i_plain, np.int32),
        ("d_dih", d_dih, np.int16),
        ("i_dih", i_dih, np.int32),
    ):
        col = np.full(n, -1, dtype)
        col[ok] = values
        cols[f"{algo}.{name}"] = col
    votes = np.full(n, -1, np.int16)
    votes_dih = np.full(n, -1, np.int16)
    if b.snapshot is not None and len(q):
        votes[ok] = _votes(b, q)
        votes_dih[ok] = _votes(b, qd) if qd is not None else votes[ok]
    cols[f"{algo}.votes"] = votes
    cols[f"{algo}.votes_dih"] = votes_dih
    if len(q) and len(b.hashes):
        return pair_histogram(q, b.hashes, b.bits)
    return np.zeros(b.bits + 1, np.int64)


def process_partition(job: PartitionJob, ctx: BankContext) -> PartitionResult:
    """Produce, hash and match the images ``[job.start, job.stop)`` (one Dask task)."""
    n = job.stop - job.start
    cpu0 = time.process_time()
    cols = _empty_columns(ctx, n)
    cols["status"] = np.zeros(n, np.uint8)
    cols["family"] = np.zeros(n, np.uint16)
    cols["digest"] = np.zeros(n, np.uint64)
    errors, t_load, t_hash = _produce_and_hash(job, ctx, cols)
    t2 = time.perf_counter()
    pair_hist = {algo: _match(algo, b, cols, n) for algo, b in ctx.algos.items()}
    for name in ("status", "family", "digest"):  # the original column order: per-algorithm columns first
        cols[name] = cols.pop(name)
    seconds = {
        "load": t_load,
        "hash": t_hash,
        "match": time.perf_counter() - t2,
        "cpu": time.process_time() - cpu0,  # CPU time of the task: what a busy machine does not inflate
    }
    return PartitionResult(job.index, job.start, cols, pair_hist, errors, seconds, _max_rss_kb())


class Store:
    """Columns of a run as ``.npy`` memmaps (one row per benign image) plus the checkpoint."""

    def __init__(self, root: Path, total: int, partitions: int, algos: dict[str, AlgoBank]) -> None:
        self.root = root
        self.total = total
        self.algos = algos
        self.shapes: dict[str, tuple[tuple[int, ...], Any]] = {
            "status": ((total,), np.uint8),
            "family": ((total,), np.uint16),
            "digest": ((total,), np.uint64),
        }
        for algo, b in algos.items():
            nb = b.bits // 8
            self.shapes[f"{algo}.hash"] = ((total, nb), np.uint8)
            self.shapes[f"{algo}.quality"] = ((total,), np.uint8)
            if b.dihedral:
                self.shapes[f"{algo}.dihedral"] = ((total, 8, nb), np.uint8)
            for name, dt in (
                ("d_plain", np.int16),
                ("i_plain", np.int32),
                ("d_dih", np.int16),
                ("i_dih", np.int32),
                ("votes", np.int16),
                ("votes_dih", np.int16),
            ):
                self.shapes[f"{algo}.{name}"] = ((total,), dt)
            self.shapes[f"{algo}.pairs"] = ((partitions, b.bits + 1), np.int64)
        self._maps: dict[str, np.memmap] = {}

    def path(self, name: str) -> Path:
        return self.root / f"{name}.npy"

    def open(self, *, create: bool) -> None:
        from numpy.lib.format import open_memmap

        self.root.mkdir(parents=True, exist_ok=True)
        for name, (shape, dtype) in self.shapes.items():
            p = self.path(name)
            if create or not p.exists():
                self._maps[name] = open_memmap(p, mode="w+", dtype=dtype, shape=shape)
            else:
                m = open_memmap(p, mode="r+")
                if m.shape != shape or m.dtype != np.dtype(dtype):
                    raise ValueError(f"{p}: the stored column does not fit this run; use --restart")
                self._maps[name] = m

    def column(self, name: str) -> np.memmap:
        return self._maps[name]

    def write(self, res: PartitionResult) -> None:
        n = len(res.columns["status"])
        for name, values in res.columns.items():
            self._maps[name][res.start : res.start + n] = values
        for algo, hist in res.pair_hist.items():
            self._maps[f"{algo}.pairs"][res.index] = hist
        for m in self._maps.values():
            m.flush()

    def close(self) -> None:
        for m in self._maps.values():
            m.flush()
        self._maps.clear()


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _identity(cfg: StreamConfig, ctx: BankContext, seed: int) -> dict[str, Any]:
    """What must be equal for a checkpoint to be resumed."""
    h = hashlib.sha256()
    for algo in sorted(ctx.algos):
        h.update(algo.encode())
        h.update(np.ascontiguousarray(ctx.algos[algo].hashes).tobytes())
    files = hashlib.sha256("\n".join(cfg.plan.files).encode()).hexdigest()
    identity: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "seed": seed,
        "plan": cfg.plan.describe(),
        "files_sha256": files,
        "bank_sha256": h.hexdigest(),
        "algos": sorted(ctx.algos),
        "snapshot": cfg.snapshot,
        "partition_size": cfg.partition_size,
        "total": cfg.plan.total,
    }
    params = {a: ctx.algos[a].snapshot_params for a in sorted(ctx.algos) if ctx.algos[a].snapshot_params}
    if params:  # partitions matched against one snapshot never mix with another's (a recalibration)
        identity["snapshot_params"] = params
    return identity


def _bank_hashes(
    entries: list[Any], algos: list[str], engine: Any, decode: str
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[str, str]]]:
    """Hash the bank images as tasks of 32 files; returns ({algo: (hashes, quality)}, errors)."""
    jobs = [
        (i // 32, tuple((e.path, tuple(algos), False, decode) for e in entries[i : i + 32]))
        for i in range(0, len(entries), 32)
    ]
    results: dict[int, list[Any]] = {}
    for job, rows in engine.map_unordered(_hash_files, jobs):
        results[job[0]] = rows
    rows = [r for i in range(len(jobs)) for r in results[i]]
    errors = [(path, res) for path, res, _ in rows if isinstance(res, str)]
    ok = [res for _, res, _ in rows if not isinstance(res, str)]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for algo in algos:
        hs = np.array([np.frombuffer(r[algo][0], np.uint8) for r in ok], np.uint8).reshape(len(ok), -1)
        out[algo] = (hs, np.array([r[algo][1] for r in ok], np.int64))
    return out, errors


def _hash_files(job: tuple[int, tuple[tuple[str, tuple[str, ...], bool, str], ...]]) -> list[Any]:
    from research.corpus import _hash_one

    return [_hash_one(j) for j in job[1]]


def one_sided_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper bound on p after k events in n trials (Clopper-Pearson; k=0: 1-(1-c)^(1/n))."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    from scipy.special import betaincinv

    return float(betaincinv(k + 1, n - k, confidence))


def bound(k: int, n: int) -> dict[str, Any]:
    """The interval a policy reader needs beside k of n."""
    w = stats.wilson(k, n)
    cp = stats.clopper_pearson(k, n)
    return {
        "k": k,
        "n": n,
        "p": k / n if n else 0.0,
        "wilson_95": list(w),
        "clopper_pearson_95": list(cp),
        "one_sided_95_upper": one_sided_upper(k, n),
        "rule_of_three": 3.0 / n if n and k == 0 else None,
    }


def _load_checkpoint(path: Path, log: Path) -> dict[str, Any] | None:
    """The run's identity (``checkpoint.json``) and its finished partitions (``partitions.jsonl``).

    Each finished partition is one appended line, so recording one costs O(1) whatever the run's size; a
    line cut short by a crash is ignored (that partition runs again).
    """
    if not path.exists():
        return None
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable checkpoint ({exc}); use --restart") from exc
    if not isinstance(head, dict) or "identity" not in head:
        raise ValueError(f"{path}: not a pocketscan checkpoint; use --restart")
    parts: dict[str, Any] = dict(head.get("partitions") or {})  # a checkpoint that kept them inline
    if log.exists():
        with log.open(encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                if isinstance(rec, dict) and isinstance(rec.get("partition"), int):
                    parts[str(rec.pop("partition"))] = rec
    return {"identity": head["identity"], "partitions": parts}


def _jobs(plan: Plan, size: int, skip: set[int]) -> list[PartitionJob]:
    nfiles = len(plan.files)
    jobs = []
    for i, start in enumerate(range(0, plan.total, size)):
        if i in skip:
            continue
        stop = min(plan.total, start + size)
        paths = None
        if start < nfiles:
            if stop > nfiles:  # a partition that straddles files and generated items: files only
                stop = nfiles
            paths = plan.files[start:stop]
        jobs.append(PartitionJob(i, start, stop, paths))
    # Run order interleaves the sources in proportion (files, generated and edits advance together), so a
    # run stopped early has measured every source; figures never depend on the order.
    spans = [(0, nfiles), (nfiles, nfiles + plan.generate), (nfiles + plan.generate, plan.total)]

    def progress_key(job: PartitionJob) -> tuple[float, int]:
        for lo, hi in spans:
            if lo <= job.start < hi:
                return ((job.start - lo) / (hi - lo), job.index)
        return (1.0, job.index)

    return sorted(jobs, key=progress_key)


@dataclass
class _Banks:
    """The bank of every algorithm, what the report says about it, and how long hashing it took."""

    banks: dict[str, AlgoBank]
    meta: dict[str, dict[str, Any]]
    errors: list[tuple[str, str]]
    seconds: float


def _algo_bank(
    cfg: StreamConfig, algo: str, hashes: np.ndarray, quality: np.ndarray, seed: int
) -> tuple[AlgoBank, dict[str, Any]]:
    """One algorithm's bank (scannable hashes, the snapshot built from all of them) and its snapshot info."""
    from research.corpus import algo_info, cheap_dihedral
    from research.snapshot_view import build_matcher

    info = algo_info(algo)
    ok = quality >= info.min_quality
    snap_bytes = pub = None
    snap_info: dict[str, Any] = {"available": False, "reason": "disabled (--no-snapshot)"}
    if cfg.snapshot:
        out = Path(cfg.out)
        where = out / "snapshot" if len(cfg.algos) == 1 else out / "snapshot" / algo
        matcher, why = build_matcher(algo, [bytes(h) for h in hashes], quality.tolist(), where, seed=seed)
        if matcher is not None:
            snap_info = {"available": True, **matcher.info()}
            snap_bytes = Path(snap_info["path"]).read_bytes()
            pub = bytes.fromhex(snap_info["public_key"])
        else:
            snap_info = {"available": False, "reason": why}
    bank = AlgoBank(
        bits=info.bits,
        threshold=info.threshold,
        min_quality=info.min_quality,
        dihedral=cheap_dihedral(algo),
        hashes=np.ascontiguousarray(hashes[ok]),
        snapshot=snap_bytes,
        public_key=pub,
        snapshot_now=time.time(),
        snapshot_params={k: int(snap_info[k]) for k in SNAPSHOT_IDENTITY_KEYS if k in snap_info} or None,
    )
    return bank, snap_info


def _prepare_banks(cfg: StreamConfig, engine: Any, bank_entries: list[Any], seed: int) -> _Banks:
    """Hash the bank on the engine and build each algorithm's :class:`AlgoBank`."""
    t_bank = time.perf_counter()
    bank_sets, bank_err = _bank_hashes(bank_entries, cfg.algos, engine, cfg.plan.decode)
    unreadable = {p for p, _ in bank_err}
    readable = [e for e in bank_entries if e.path not in unreadable]
    banks: dict[str, AlgoBank] = {}
    meta: dict[str, dict[str, Any]] = {}
    for algo in cfg.algos:
        hashes, quality = bank_sets[algo]
        banks[algo], snap_info = _algo_bank(cfg, algo, hashes, quality, seed)
        ok = quality >= banks[algo].min_quality
        meta[algo] = {
            "images": len(hashes),
            "scannable": int(ok.sum()),
            "gated_out": int((~ok).sum()),
            "paths": [e.path for e, good in zip(readable, ok, strict=True) if good],
            "snapshot": snap_info,
        }
    return _Banks(banks, meta, bank_err, time.perf_counter() - t_bank)


def _open_checkpoint(cfg: StreamConfig, store_dir: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to resume (refused if it is another run's), or a new one written to disk."""
    ckpt_path = store_dir / "checkpoint.json"
    log_path = store_dir / "partitions.jsonl"
    ckpt = None if cfg.restart else _load_checkpoint(ckpt_path, log_path)
    if ckpt is not None and ckpt["identity"] != identity:
        raise ValueError(
            f"{cfg.out} holds a checkpoint of a different run (other bank, images, seed, partition size or "
            "snapshot parameters); use another --out, or --restart to discard it"
        )
    if ckpt is None:
        ckpt = {"identity": identity, "partitions": {}}
        store_dir.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
        _write_json_atomic(ckpt_path, {"identity": identity})
    elif log_path.exists() and log_path.stat().st_size:
        with log_path.open("rb+") as log:  # end a torn last line, so the next record starts its own
            log.seek(-1, os.SEEK_END)
            if log.read(1) != b"\n":
                log.write(b"\n")
    return ckpt


def _record(res: PartitionResult) -> dict[str, Any]:
    """A finished partition as the checkpoint keeps it."""
    return {
        "images": len(res.columns["status"]),
        "errors": [[gi, msg[:300]] for gi, msg in res.errors],
        "seconds": {k: round(v, 4) for k, v in res.seconds.items()},
        "max_rss_kb": res.max_rss_kb,
    }


def _append_record(log_path: Path, index: int, record: dict[str, Any]) -> None:
    with log_path.open("a", encoding="utf-8") as log:  # after the columns are flushed
        log.write(json.dumps({"partition": index, **record}) + "\n")
        log.flush()
        os.fsync(log.fileno())


@dataclass
class _Progress:
    """What this invocation did."""

    submitted: int = 0
    completed: int = 0
    images: int = 0
    stopped: str = ""
    seconds: float = 0.0


def _run_partitions(
    cfg: StreamConfig,
    engine: Any,
    ctx: BankContext,
    store: Store,
    jobs: list[PartitionJob],
    ckpt: dict[str, Any],
    t_start: float,
) -> _Progress:
    """Run the jobs on the engine, writing each result to the store, then to the checkpoint."""
    from research.parallel import progress

    prog = _Progress()
    log_path = store.root / "partitions.jsonl"
    t_run = time.perf_counter()

    def should_stop() -> bool:  # asked once before each submission
        if cfg.max_partitions is not None and prog.submitted >= cfg.max_partitions:
            return True
        if cfg.time_limit is not None and time.perf_counter() - t_start >= cfg.time_limit:
            return True
        prog.submitted += 1
        return False

    in_flight = None
    if cfg.max_partitions is not None:
        in_flight = max(1, min(cfg.max_partitions, 2 * max(1, engine.workers)))
    quiet = cfg.quiet or not sys.stderr.isatty()
    shared = engine.share(ctx)
    try:
        stream = engine.map_unordered(
            process_partition, jobs, shared, in_flight=in_flight, should_stop=should_stop
        )
        for _job, res in progress(stream, total=len(jobs), description="partitions", quiet=quiet):
            store.write(res)
            record = _record(res)
            prog.images += record["images"]
            prog.completed += 1
            ckpt["partitions"][str(res.index)] = record
            _append_record(log_path, res.index, record)
    except KeyboardInterrupt:
        prog.stopped = "interrupted (Ctrl-C); the same command resumes from the checkpoint"
    prog.seconds = time.perf_counter() - t_run
    return prog


def _stop_reason(cfg: StreamConfig, prog: _Progress, done: int, n_parts: int) -> str:
    if prog.stopped or done >= n_parts:
        return prog.stopped
    by_max = cfg.max_partitions is not None and prog.submitted >= cfg.max_partitions
    return (
        f"stopped after {prog.completed} partition(s) by "
        + ("--max-partitions" if by_max else "--time-limit")
        + "; the same command resumes from the checkpoint"
    )


def _run_info(
    cfg: StreamConfig,
    prog: _Progress,
    ckpt: dict[str, Any],
    resumed: int,
    images_before: int,
    n_parts: int,
    bank_seconds: float,
    engine_info: dict[str, Any],
) -> dict[str, Any]:
    """results.json's ``run``: completeness, throughput, memory, engine, where the store is."""
    parts = ckpt["partitions"]
    store_dir = Path(cfg.out) / "store"
    return {
        "complete": len(parts) == n_parts,
        "stopped": _stop_reason(cfg, prog, len(parts), n_parts),
        "partitions_total": n_parts,
        "partitions_done": len(parts),
        "partitions_resumed": resumed,
        "partition_size": cfg.partition_size,
        "images_planned": cfg.plan.total,
        "images_processed": images_before + prog.images,
        "images_this_invocation": prog.images,
        "seconds_this_invocation": round(prog.seconds, 3),
        "images_per_second": round(prog.images / prog.seconds, 2)
        if prog.seconds > 0 and prog.images
        else None,
        "bank_seconds": round(bank_seconds, 3),
        "task_seconds_per_image": _task_cost(parts),
        "peak_rss_mb_driver": round(_max_rss_kb() / 1024, 1),
        "peak_rss_mb_worker": round(
            max((int(v["max_rss_kb"]) for v in parts.values()), default=0) / 1024, 1
        ),
        "engine": engine_info,
        "store": str(store_dir),
        "checkpoint": str(store_dir / "checkpoint.json"),
    }


def run_stream(cfg: StreamConfig, seed: int = 0) -> Any:
    """Run (or resume) a streaming false-match measurement; returns :class:`research.results.Results`."""
    from research.corpus import list_images
    from research.engine import Engine
    from research.evals.fpr import _dedupe
    from research.stream_report import build_results

    t_start = time.perf_counter()
    if cfg.partition_size < 1:
        raise ValueError("--partition-size must be at least 1")
    store_dir = Path(cfg.out) / "store"
    bank_all = list_images(cfg.bank)
    if not bank_all:
        raise ValueError(f"{cfg.bank}: no images found")
    bank_entries, bank_dups, bank_digests = _dedupe(bank_all)
    plan = cfg.plan
    n_parts = len(_jobs(plan, cfg.partition_size, set()))
    with Engine(
        scheduler=cfg.scheduler,
        workers=cfg.workers,
        connect_timeout=cfg.connect_timeout,
        task_timeout=cfg.task_timeout,
        local_directory=str(store_dir / "dask-scratch"),
    ) as engine:
        engine_info = engine.describe()
        banks = _prepare_banks(cfg, engine, bank_entries, seed)
        ctx = BankContext(plan=plan, algos=banks.banks)
        ckpt = _open_checkpoint(cfg, store_dir, _identity(cfg, ctx, seed))
        store = Store(store_dir, plan.total, n_parts, ctx.algos)
        store.open(create=not ckpt["partitions"])
        done_before = {int(k) for k in ckpt["partitions"]}
        images_before = sum(int(v["images"]) for v in ckpt["partitions"].values())
        jobs = _jobs(plan, cfg.partition_size, done_before)
        prog = _run_partitions(cfg, engine, ctx, store, jobs, ckpt, t_start)
        store.close()
    store = Store(store_dir, plan.total, n_parts, ctx.algos)
    store.open(create=False)
    try:
        run_info = _run_info(
            cfg, prog, ckpt, len(done_before), images_before, n_parts, banks.seconds, engine_info
        )
        return build_results(
            cfg,
            seed,
            plan,
            store,
            ctx,
            banks.meta,
            ckpt,
            run_info,
            bank_counts={
                "bank_files": len(bank_all),
                "bank_byte_duplicates_removed": len(bank_dups),
                "bank_unreadable": len(banks.errors),
            },
            bank_digests=set(bank_digests),
            total_seconds=time.perf_counter() - t_start,
        )
    finally:
        store.close()


def _task_cost(parts: dict[str, Any]) -> dict[str, float | None]:
    """Seconds per image inside the tasks (load/generate, hash, match), summed over all partitions."""
    n = sum(int(v["images"]) for v in parts.values())
    out: dict[str, float | None] = {}
    for key in ("load", "hash", "match", "cpu"):
        total = sum(float(v["seconds"].get(key, 0.0)) for v in parts.values())
        out[key] = total / n if n else None
    walls = [out[k] for k in ("load", "hash", "match")]
    out["total"] = sum(v for v in walls if v is not None) if n else None
    return out
