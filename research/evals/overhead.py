"""What scanning costs a sender, per image, and what a snapshot update costs each client.

The one measurement of send overhead: ``pocketscan research overhead`` renders it as a report and
``pocketscan bench overhead`` (:mod:`research.bench_overhead`) as a table of steps.

A real relay (``relay.serve.build_server``, SQLite store, metadata log on) is started on a loopback port in
this process; an authority publishes a signed snapshot sized for ``--bank-size`` hashes; Alice sends each of
the user's photos to Bob twice, timing every stage with ``time.perf_counter``:

* **with scanning** (the client pipeline, ``client.image_pipeline``): read the file, decode
  (``scanner.image``, fast mode), PDQ hash with the 8 dihedral variants, match against the snapshot
  (``scanner.matcher``), seal the verdict and
  encrypt the attachment (``client.crypto.attachments.encrypt_image``), upload the
  blob and send the pointer envelope through the relay (``relay.client.RelayConnection``);
* **without scanning** (policy ``off``): read, seal a ``skipped`` verdict, encrypt, upload, send.

Each image is timed ``--repeats`` times; medians are reported, with the overhead of scanning in milliseconds
and as a share of the whole send. The snapshot download (size and time for one client, per update) is
measured by Bob fetching it from the relay. The relay's metadata log of the run is kept in the output
folder, ready for ``pocketscan research relay-view``. Timings run on one core (one process), as on a phone.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from research.corpus import list_images
from research.evals.common import run_meta
from research.results import Plot, Results, Section, Series, Table

if TYPE_CHECKING:
    from relay.client import RelayConnection
    from scanner.hashers.base import Hasher
    from scanner.matcher import Matcher
    from scanner.outcome import ScanOutcome

__all__ = ["STAGES", "OverheadConfig", "SendTiming", "Session", "SnapshotCost", "measure_sends", "run"]

STAGES: tuple[str, ...] = ("read", "decode", "hash", "match", "encrypt", "upload", "send")
SCAN_STAGES: tuple[str, ...] = ("decode", "hash", "match")


@dataclass
class OverheadConfig:
    photos: str
    out: str
    bank_size: int = 100_000
    repeats: int = 3
    limit: int | None = None
    quiet: bool = True
    workers: int | None = None
    dihedral: bool = True
    """Hash the 8 dihedral variants (the client's default) or only the upright image."""
    banked: tuple[str, ...] = ()
    """Images whose PDQ hashes join the ``bank_size`` random ones (so that some sends match)."""
    without_scanning: bool = True
    """Also send each photo with policy ``off`` (no decode, hash or match)."""
    progress_label: str = "timing sends"


@dataclass
class SendTiming:
    """One timed send: seconds per stage (``encrypt`` includes sealing the verdict, also kept as ``seal``)."""

    image: str
    repeat: int
    scanning: bool
    bytes: int
    blob_bytes: int
    stages: dict[str, float]
    seal: float
    scan: ScanOutcome | None
    """The matcher's outcome; None without scanning."""

    @property
    def total(self) -> float:
        return sum(self.stages.values())

    def row(self) -> dict[str, Any]:
        """The row of ``results.json``'s ``raw`` list."""
        return {"image": self.image, "repeat": self.repeat, "scanning": self.scanning, "bytes": self.bytes,
                "blob_bytes": self.blob_bytes, **self.stages, "total": self.total}


@dataclass
class SnapshotCost:
    """What one snapshot update costs one client: bytes, loopback download, verify and load."""

    bytes: int
    download_s: float
    verify_load_s: float
    bank_size: int
    tables: int
    bits: int
    min_votes: int


@dataclass
class Session:
    """Everything one measurement session produced."""

    snapshot: SnapshotCost
    snapshot_build_s: float
    metadata_log: str
    alice: str = ""
    bob: str = ""
    sends: list[SendTiming] = field(default_factory=list)


def _key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"pocketscan-research/overhead/{name}/{seed}".encode()).digest()


def _fresh_outputs(out_dir: str) -> tuple[Path, Path]:
    """The metadata log and relay database paths under ``out_dir``, left over files removed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_log = out / "relay-metadata.jsonl"
    if meta_log.exists():
        meta_log.unlink()
    db = out / "relay.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return meta_log, db


def _bank(cfg: OverheadConfig, seed: int) -> np.ndarray:
    """``bank_size`` random PDQ hashes, then the hashes of ``banked`` images that pass the quality gate."""
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, size=(cfg.bank_size, 32), dtype=np.uint8)
    if not cfg.banked:
        return bank
    from scanner.hashers.spec import PDQ
    from scanner.hashing import hash_file

    hashed = [hash_file(p, algo="pdq", mode="exact") for p in cfg.banked]
    extra = [np.frombuffer(h.hash, dtype=np.uint8) for h in hashed if PDQ.passes_quality(h.quality)]
    return np.vstack([bank, *extra]) if extra else bank


def _signed_snapshot(bank: np.ndarray, authority: Any, seed: int) -> tuple[bytes, Any, float]:
    """The signed snapshot of ``bank`` (through the authority workflow's calibrate and sign steps), its
    parameters and the seconds building it took."""
    from scanner.snapshot.workflow import BuildSeeds, SnapshotPlan, build_signed, calibrate_for, privacy_cost

    hashes = [bytes(row) for row in bank]
    seeds = BuildSeeds(seed=_key(seed, "lsh"), salt=_key(seed, "salt"), decoy_seed=_key(seed, "decoys"))
    plan = SnapshotPlan(version=1, valid_days=1.0, seeds=seeds)
    t = time.perf_counter()
    sizing = calibrate_for(hashes, plan)
    snap = build_signed(hashes, sizing, authority, plan, now=int(time.time()),
                        privacy=privacy_cost(sizing.params, plan))
    return snap.data, sizing.params, time.perf_counter() - t


async def _fetch_snapshot(bob: RelayConnection, authority_public: bytes, params: Any,
                          bank_size: int) -> tuple[Matcher, SnapshotCost]:
    """Bob downloads the snapshot and loads it into a matcher, timed."""
    from scanner.matcher import Matcher

    t = time.perf_counter()
    fetched = await bob.fetch_snapshot()
    download_s = time.perf_counter() - t
    if fetched is None:
        raise RuntimeError("the relay served no snapshot")
    _info, data = fetched
    matcher = Matcher(authority_public)
    t = time.perf_counter()
    matcher.load(data, now=time.time())
    load_s = time.perf_counter() - t
    return matcher, SnapshotCost(bytes=len(data), download_s=download_s, verify_load_s=load_s,
                                 bank_size=bank_size, tables=params.tables, bits=params.bits,
                                 min_votes=params.min_votes)


def _scan(raw: bytes, name: str, hasher: Hasher, matcher: Matcher, dihedral: bool,
          st: dict[str, float]) -> tuple[ScanOutcome, int | None]:
    """Decode, hash and match ``raw``, adding each stage's seconds to ``st``; the outcome and quality."""
    from scanner.image import load_rgb_bytes

    t = time.perf_counter()
    rgb = load_rgb_bytes(raw, name=name, mode="fast")
    st["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    hashed = hasher.hash_rgb(rgb, dihedral=dihedral)
    st["hash"] = time.perf_counter() - t
    t = time.perf_counter()
    outcome = matcher.match(hashed)
    st["match"] = time.perf_counter() - t
    return outcome, hashed.quality


def _seal(raw: bytes, scan: ScanOutcome | None, quality: int | None) -> Any:
    """The sealed verdict the attachment carries: the scan's, or ``skipped`` under policy off."""
    from scanner.verdict import issue_verdict

    if scan is None:
        return issue_verdict(raw, "skipped", reason="policy off")
    return issue_verdict(raw, scan.outcome, votes=scan.votes, snapshot_fingerprint=scan.snapshot_fingerprint,
                         algo="pdq", quality=quality)


async def _time_send(alice: RelayConnection, bob_account: str, path: str, repeat: int,
                     scanner: tuple[Hasher, Matcher, bool] | None) -> tuple[SendTiming, str]:
    """Send one photo to Bob, timed per stage (``scanner`` None: policy off); the timing and blob id."""
    from client.crypto.attachments import encrypt_image

    name = Path(path).name
    st: dict[str, float] = {}
    t = time.perf_counter()
    raw = Path(path).read_bytes()
    st["read"] = time.perf_counter() - t
    scan: ScanOutcome | None = None
    quality: int | None = None
    if scanner is not None:
        scan, quality = _scan(raw, name, *scanner, st)
    else:
        st["decode"] = st["hash"] = st["match"] = 0.0
    t = time.perf_counter()
    verdict = _seal(raw, scan, quality)
    seal = time.perf_counter() - t
    enc = encrypt_image(raw, verdict, content_type="image/jpeg")
    st["encrypt"] = time.perf_counter() - t
    t = time.perf_counter()
    blob_id = await alice.put_blob(enc.blob)
    st["upload"] = time.perf_counter() - t
    t = time.perf_counter()
    pointer = blob_id.encode() + enc.pointer.key + enc.pointer.digest
    await alice.send(bob_account, pointer + bytes(max(0, 160 - len(pointer))))
    st["send"] = time.perf_counter() - t
    timing = SendTiming(image=name, repeat=repeat, scanning=scanner is not None, bytes=len(raw),
                        blob_bytes=len(enc.blob), stages=st, seal=seal, scan=scan)
    return timing, blob_id


async def _bob_receives(bob: RelayConnection, sends: int, blob_ids: list[str]) -> None:
    """Bob receives and downloads a few attachments, so the metadata log shows both sides."""
    for _ in range(min(3, sends)):
        delivery = await bob.next_message(timeout=5)
        if delivery is None:
            break
        await bob.ack([delivery.mid])
    for blob_id in blob_ids[:3]:
        await bob.get_blob(blob_id)


async def _send_all(cfg: OverheadConfig, session: Session, alice: RelayConnection, bob: RelayConnection,
                    matcher: Matcher, paths: list[str]) -> None:
    """Every photo, ``repeats`` times, with scanning (and without, unless turned off); Bob receives a few."""
    from research.parallel import progress
    from scanner.hashers.registry import get_hasher

    scanner = (get_hasher("pdq"), matcher, cfg.dihedral)
    modes = (scanner, None) if cfg.without_scanning else (scanner,)
    blob_ids: list[str] = []
    jobs = [(p, r) for p in paths for r in range(cfg.repeats)]
    for path, rep in progress(jobs, total=len(jobs), description=cfg.progress_label, quiet=cfg.quiet):
        for mode in modes:
            timing, blob_id = await _time_send(alice, bob.account, path, rep, mode)
            session.sends.append(timing)
            blob_ids.append(blob_id)
    await _bob_receives(bob, len(session.sends), blob_ids)
    session.alice, session.bob = alice.account, bob.account


async def _session(cfg: OverheadConfig, seed: int, paths: list[str]) -> Session:
    import nacl.signing

    from relay.client import RelayConnection
    from relay.serve import build_server
    from scanner.authority import AuthorityKey

    meta_log, db = _fresh_outputs(cfg.out)
    authority = AuthorityKey(_key(seed, "authority"))
    server = build_server(port=0, db=str(db), authorities=frozenset({authority.public_key}),
                          metadata_log=str(meta_log), sync="normal")
    await server.start()
    try:
        snap, params, build_s = _signed_snapshot(_bank(cfg, seed), authority, seed)
        alice_key = nacl.signing.SigningKey(_key(seed, "alice"))
        bob_key = nacl.signing.SigningKey(_key(seed, "bob"))
        async with await RelayConnection.connect(server.url, authority) as auth_conn:
            await auth_conn.publish_snapshot(snap, 1)
        async with (
            await RelayConnection.connect(server.url, alice_key) as alice,
            await RelayConnection.connect(server.url, bob_key) as bob,
        ):
            matcher, cost = await _fetch_snapshot(bob, authority.public_key, params, cfg.bank_size)
            session = Session(snapshot=cost, snapshot_build_s=build_s, metadata_log=str(meta_log))
            await _send_all(cfg, session, alice, bob, matcher, paths)
    finally:
        await server.stop()
        if server.core.metadata is not None:
            server.core.metadata.close()
    return session


def measure_sends(cfg: OverheadConfig, paths: list[str], seed: int = 0) -> Session:
    """Run one measurement session over ``paths`` (a real relay on loopback, in this process)."""
    return asyncio.run(_session(cfg, seed, paths))


# --- research overhead: the report ------------------------------------------------------------------


def _median_ms(rows: list[dict[str, Any]], scanning: bool, stage: str) -> float:
    return float(statistics.median(r[stage] for r in rows if r["scanning"] == scanning)) * 1e3


def stage_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per stage (and ``total``): median ms with scanning, without, and the difference."""
    out: list[list[Any]] = []
    for stage in (*STAGES, "total"):
        w, wo = _median_ms(rows, True, stage), _median_ms(rows, False, stage)
        out.append([stage, w, wo, w - wo])
    return out


def image_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per image: bytes, median total ms with scanning, without, and the overhead."""
    out: list[list[Any]] = []
    for n in sorted({r["image"] for r in rows}):
        w = statistics.median(r["total"] for r in rows if r["image"] == n and r["scanning"]) * 1e3
        wo = statistics.median(r["total"] for r in rows if r["image"] == n and not r["scanning"]) * 1e3
        size = next(r["bytes"] for r in rows if r["image"] == n)
        out.append([n, size, w, wo, w - wo])
    return out


def _summary(cfg: OverheadConfig, stages: list[list[Any]], images: int, snap: SnapshotCost) -> list[str]:
    tot_w, tot_wo = stages[-1][1], stages[-1][2]
    return [
        f"Scanning adds {tot_w - tot_wo:.1f} ms per image (median over {images} photos x {cfg.repeats}): "
        f"{tot_w:.1f} ms with scanning vs {tot_wo:.1f} ms without "
        f"({100 * (tot_w - tot_wo) / max(tot_w, 1e-9):.0f}% of the send)",
        "Stages with scanning (median ms): " + ", ".join(f"{r[0]} {r[1]:.1f}" for r in stages[:-1]),
        f"Snapshot for a bank of {cfg.bank_size:,}: {snap.bytes / 1e6:.2f} MB downloaded per client per "
        f"update ({snap.download_s * 1e3:.0f} ms on loopback, "
        f"{snap.verify_load_s * 1e3:.0f} ms to verify "
        "and load)",
    ]


def _cost_plots(stages: list[list[Any]], rows: list[dict[str, Any]]) -> list[Plot]:
    totals = {s: [float(r["total"]) * 1e3 for r in rows if r["scanning"] == s] for s in (True, False)}
    return [
        Plot("bar", "Median time per stage", "stage", "milliseconds",
             [Series("with scanning", [r[1] for r in stages[:-1]]),
              Series("without scanning", [r[2] for r in stages[:-1]])],
             categories=list(STAGES), name="overhead-stages"),
        Plot("hist", "Total send time per image", "milliseconds", "sends",
             [Series("with scanning", totals[True]), Series("without scanning", totals[False])],
             bins=24, name="overhead-totals"),
    ]


def _cost_section(stages: list[list[Any]], by_image: list[list[Any]], rows: list[dict[str, Any]]) -> Section:
    sec = Section("Per-image cost of scanning")
    sec.text.append(
        "Each stage calls the project's own code (see the module docstring); the relay is real and "
        "on loopback, so upload/send times are a lower bound of a real network's. 'Without "
        "scanning' is the policy-off path: no decode, hash or match, a 'skipped' verdict."
    )
    sec.tables.append(
        Table("Median time per stage (ms)", ["stage", "with scanning", "without", "difference"], stages)
    )
    sec.tables.append(
        Table("Per image (median total ms)", ["image", "bytes", "with scanning", "without", "overhead"],
              by_image)
    )
    sec.plots.extend(_cost_plots(stages, rows))
    return sec


def _snapshot_section(cfg: OverheadConfig, snap: SnapshotCost, metadata_log: str) -> Section:
    sec = Section("Snapshot download per client per update")
    columns = ["bank size", "bytes", "tables L", "bits k", "min votes", "download ms (loopback)",
               "verify+load ms"]
    row = [cfg.bank_size, snap.bytes, snap.tables, snap.bits, snap.min_votes, snap.download_s * 1e3,
           snap.verify_load_s * 1e3]
    sec.tables.append(Table("Snapshot", columns, [row]))
    sec.text.append(
        f"The relay's metadata log of the run: {metadata_log} (read it with "
        "`pocketscan research relay-view --log ...`)."
    )
    return sec


def _photo_paths(cfg: OverheadConfig) -> list[str]:
    entries = list_images(cfg.photos)
    if cfg.limit:
        entries = entries[: cfg.limit]
    if not entries:
        raise ValueError(f"{cfg.photos}: no images found")
    if cfg.bank_size < 1 or cfg.repeats < 1:
        raise ValueError("--bank-size and --repeats must be at least 1")
    return [e.path for e in entries]


def run(cfg: OverheadConfig, seed: int = 0) -> Results:
    t0 = time.perf_counter()
    session = measure_sends(cfg, _photo_paths(cfg), seed)
    rows = [s.row() for s in session.sends]
    stages, by_image = stage_rows(rows), image_rows(rows)
    snap = session.snapshot
    data = {
        "photos": cfg.photos,
        "images": len(by_image),
        "repeats": cfg.repeats,
        "stages_ms": stages,
        "per_image_ms": by_image,
        "snapshot": asdict(snap),
        "snapshot_build_s": session.snapshot_build_s,
        "raw": rows,
        "metadata_log": session.metadata_log,
        "accounts": {"alice": session.alice, "bob": session.bob},
    }
    meta = run_meta(seed, t0, bank_size=cfg.bank_size)
    sections = [_cost_section(stages, by_image, rows), _snapshot_section(cfg, snap, session.metadata_log)]
    return Results("overhead", "pocketscan research overhead: the cost of scanning per image",
                   _summary(cfg, stages, len(by_image), snap), data, sections, meta)
