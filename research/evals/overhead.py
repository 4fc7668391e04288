"""What scanning costs a sender, per image, and what a snapshot update costs each client.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from research.corpus import list_images
from research.evals.common import environment
from research.results import Plot, Results, Section, Series, Table

__all__ = ["STAGES", "OverheadConfig", "run"]

STAGES: tuple[str, ...] = ("read", "decode", "hash", "match", "encrypt", "upload", "send")


@dataclass
class OverheadConfig:
    photos: str
    out: str
    bank_size: int = 100_000
    repeats: int = 3
    limit: int | None = None
    quiet: bool = True
    workers: int | None = None


def _key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"pocketscan-research/overhead/{name}/{seed}".encode()).digest()


async def _session(cfg: OverheadConfig, seed: int, paths: list[str]) -> dict[str, Any]:
    import nacl.signing

    from client.crypto.attachments import encrypt_image
    from relay.client import RelayConnection
    from relay.serve import build_server
    from research.parallel import progress
    from scanner.authority import AuthorityKey
    from scanner.calibration import calibrate_padded
    from scanner.hashers.base import HashResult
    from scanner.hashers.registry import get_hasher
    from scanner.image import load_rgb_bytes
    from scanner.matcher import Matcher
    from scanner.snapshot import build_snapshot
    from scanner.verdict import issue_verdict

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    meta_log = out / "relay-metadata.jsonl"
    if meta_log.exists():
        meta_log.unlink()
    db = out / "relay.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    authority = AuthorityKey(_key(seed, "authority"))
    server = build_server(
        port=0,
        db=str(db),
        authorities=frozenset({authority.public_key}),
        metadata_log=str(meta_log),
        sync="normal",
    )
    await server.start()
    result: dict[str, Any] = {"metadata_log": str(meta_log)}
    try:
        rng = np.random.default_rng(seed)
        bank = rng.integers(0, 256, size=(cfg.bank_size, 32), dtype=np.uint8)
        t = time.perf_counter()
        params = calibrate_padded(cfg.bank_size).params
        now = int(time.time())
        snap = build_snapshot(
            bank,
            params=params,
            key=authority,
            version=1,
            created=now,
            expires=now + 86400,
            seed=_key(seed, "lsh"),
            salt=_key(seed, "salt"),
        )
        result["snapshot_build_s"] = time.perf_counter() - t
        alice_key = nacl.signing.SigningKey(_key(seed, "alice"))
        bob_key = nacl.signing.SigningKey(_key(seed, "bob"))
        async with await RelayConnection.connect(server.url, authority) as auth_conn:
            await auth_conn.publish_snapshot(snap, 1)
        async with (
            await RelayConnection.connect(server.url, alice_key) as alice,
            await RelayConnection.connect(server.url, bob_key) as bob,
        ):
            t = time.perf_counter()
            fetched = await bob.fetch_snapshot()
            download_s = time.perf_counter() - t
            assert fetched is not None
            _info, data = fetched
            matcher = Matcher(authority.public_key)
            t = time.perf_counter()
            matcher.load(data, now=time.time())
            load_s = time.perf_counter() - t
            result["snapshot"] = {
                "bytes": len(data),
                "download_s": download_s,
                "verify_load_s": load_s,
                "bank_size": cfg.bank_size,
                "tables": params.tables,
                "bits": params.bits,
                "min_votes": params.min_votes,
            }
            hasher = get_hasher("pdq")
            per_image: list[dict[str, Any]] = []
            blob_ids: list[str] = []
            jobs = [(p, r) for p in paths for r in range(cfg.repeats)]
            for path, rep in progress(jobs, total=len(jobs), description="timing sends", quiet=cfg.quiet):
                name = Path(path).name
                for scanning in (True, False):
                    st: dict[str, float] = {}
                    t = time.perf_counter()
                    raw = Path(path).read_bytes()
                    st["read"] = time.perf_counter() - t
                    if scanning:
                        t = time.perf_counter()
                        rgb = load_rgb_bytes(raw, name=name, mode="fast")
                        st["decode"] = time.perf_counter() - t
                        t = time.perf_counter()
                        hashed: HashResult = hasher.hash_rgb(rgb, dihedral=True)
                        st["hash"] = time.perf_counter() - t
                        t = time.perf_counter()
                        m = matcher.match(hashed)
                        st["match"] = time.perf_counter() - t
                        t = time.perf_counter()
                        verdict = issue_verdict(
                            raw,
                            m.outcome,
                            votes=m.votes,
                            snapshot_fingerprint=m.snapshot_fingerprint,
                            algo="pdq",
                            quality=hashed.quality,
                        )
                    else:
                        st["decode"] = st["hash"] = st["match"] = 0.0
                        t = time.perf_counter()
                        verdict = issue_verdict(raw, "skipped", reason="policy off")
                    enc = encrypt_image(raw, verdict, content_type="image/jpeg")
                    st["encrypt"] = time.perf_counter() - t
                    t = time.perf_counter()
                    blob_id = await alice.put_blob(enc.blob)
                    blob_ids.append(blob_id)
                    st["upload"] = time.perf_counter() - t
                    t = time.perf_counter()
                    pointer = blob_id.encode() + enc.pointer.key + enc.pointer.digest
                    await alice.send(bob.account, pointer + bytes(max(0, 160 - len(pointer))))
                    st["send"] = time.perf_counter() - t
                    per_image.append(
                        {
                            "image": name,
                            "repeat": rep,
                            "scanning": scanning,
                            "bytes": len(raw),
                            "blob_bytes": len(enc.blob),
                            **st,
                            "total": sum(st.values()),
                        }
                    )
            # Bob receives and downloads a few attachments, so the metadata log shows both sides.
            for _ in range(min(3, len(per_image))):
                delivery = await bob.next_message(timeout=5)
                if delivery is None:
                    break
                await bob.ack([delivery.mid])
            for blob_id in blob_ids[:3]:
                await bob.get_blob(blob_id)
            result["per_image"] = per_image
            result["alice"], result["bob"], result["authority"] = (
                alice.account,
                bob.account,
                "authority (snapshot publisher)",
            )
    finally:
        await server.stop()
        if server.core.metadata is not None:
            server.core.metadata.close()
    return result


def run(cfg: OverheadConfig, seed: int = 0) -> Results:
    t0 = time.perf_counter()
    entries = list_images(cfg.photos)
    if cfg.limit:
        entries = entries[: cfg.limit]
    if not entries:
        raise ValueError(f"{cfg.photos}: no images found")
    if cfg.bank_size < 1 or cfg.repeats < 1:
        raise ValueError("--bank-size and --repeats must be at least 1")
    raw = asyncio.run(_session(cfg, seed, [e.path for e in entries]))
    rows = raw["per_image"]

    def med(scanning: bool, stage: str) -> float:
        return statistics.median(r[stage] for r in rows if r["scanning"] == scanning)

    stage_rows = []
    for stage in (*STAGES, "total"):
        w, wo = med(True, stage) * 1e3, med(False, stage) * 1e3
        stage_rows.append([stage, w, wo, w - wo])
    tot_w, tot_wo = med(True, "total") * 1e3, med(False, "total") * 1e3
    by_image = []
    names = sorted({r["image"] for r in rows})
    for n in names:
        w = statistics.median(r["total"] for r in rows if r["image"] == n and r["scanning"]) * 1e3
        wo = statistics.median(r["total"] for r in rows if r["image"] == n and not r["scanning"]) * 1e3
        size = next(r["bytes"] for r in rows if r["image"] == n)
        by_image.append([n, size, w, wo, w - wo])
    snap = raw["snapshot"]
    summary = [
        f"Scanning adds {tot_w - tot_wo:.1f} ms per image (median over {len(names)} photos x {cfg.repeats}): "
        f"{tot_w:.1f} ms with scanning vs {tot_wo:.1f} ms without "
        f"({100 * (tot_w - tot_wo) / max(tot_w, 1e-9):.0f}% of the send)",
        "Stages with scanning (median ms): " + ", ".join(f"{r[0]} {r[1]:.1f}" for r in stage_rows[:-1]),
        f"Snapshot for a bank of {cfg.bank_size:,}: {snap['bytes'] / 1e6:.2f} MB downloaded per client per "
        f"update ({snap['download_s'] * 1e3:.0f} ms on loopback, "
        f"{snap['verify_load_s'] * 1e3:.0f} ms to verify "
        "and load)",
    ]
    sec = Section("Per-image cost of scanning")
    sec.text.append(
        "Each stage calls the project's own code (see the module docstring); the relay is real and "
        "on loopback, so upload/send times are a lower bound of a real network's. 'Without "
        "scanning' is the policy-off path: no decode, hash or match, a 'skipped' verdict."
    )
    sec.tables.append(
        Table("Median time per stage (ms)", ["stage", "with scanning", "without", "difference"], stage_rows)
    )
    sec.tables.append(
        Table(
            "Per image (median total ms)",
            ["image", "bytes", "with scanning", "without", "overhead"],
            by_image,
        )
    )
    sec.plots.append(
        Plot(
            "bar",
            "Median time per stage",
            "stage",
            "milliseconds",
            [
                Series("with scanning", [r[1] for r in stage_rows[:-1]]),
                Series("without scanning", [r[2] for r in stage_rows[:-1]]),
            ],
            categories=list(STAGES),
            name="overhead-stages",
        )
    )
    sec.plots.append(
        Plot(
            "hist",
            "Total send time per image",
            "milliseconds",
            "sends",
            [
                Series("with scanning", [r["total"] * 1e3 for r in rows if r["scanning"]]),
                Series("without scanning", [r["total"] * 1e3 for r in rows if not r["scanning"]]),
            ],
            bins=24,
            name="overhead-totals",
        )
    )
    sec2 = Section("Snapshot download per client per update")
    sec2.tables.append(
        Table(
            "Snapshot",
            [
                "bank size",
                "bytes",
                "tables L",
                "bits k",
                "min votes",
                "download ms (loopback)",
                "verify+load ms",
            ],
            [
                [
                    cfg.bank_size,
                    snap["bytes"],
                    snap["tables"],
                    snap["bits"],
                    snap["min_votes"],
                    snap["download_s"] * 1e3,
                    snap["verify_load_s"] * 1e3,
                ]
            ],
        )
    )
    sec2.text.append(
        f"The relay's metadata log of the run: {raw['metadata_log']} (read it with "
        "`pocketscan research relay-view --log ...`)."
    )
    data = {
        "photos": cfg.photos,
        "images": len(names),
        "repeats": cfg.repeats,
        "stages_ms": stage_rows,
        "per_image_ms": by_image,
        "snapshot": snap,
        "snapshot_build_s": raw["snapshot_build_s"],
        "raw": rows,
        "metadata_log": raw["metadata_log"],
        "accounts": {"alice": raw["alice"], "bob": raw["bob"]},
    }
    meta = {
        "seed": seed,
        "bank_size": cfg.bank_size,
        "timings": {"total_s": time.perf_counter() - t0},
        **environment(),
    }
    return Results(
        "overhead",
        "pocketscan research overhead: the cost of scanning per image",
        summary,
        data,
        [sec, sec2],
        meta,
    )
