"""`pocketscan bench oprf`: what OPRF-keyed lookups add per image, beside offline lookups of the same hashes.

For each snapshot mode (offline keys; OPRF keys with the OPRF default of 128 lookups per variant; OPRF keys
with the offline budget of 384) a real padded snapshot is built from random bank hashes, and the same query
hashes, each with its 8 dihedral variants, are matched through the device matcher: offline in-process, OPRF
through a real ``authority oprf`` service (:class:`client.authority.oprf_service.OprfService`) on a
loopback websocket. Per image: median and p90 wall time of the match, bytes sent and received, and the
service's CPU time for the evaluation (thread CPU of the batch evaluation). With ``--photos`` the hashes
come from the user's photos (decode + PDQ, also timed), else from random hashes (the match cost does not
depend on the image). The machine is shared: the load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.authority.oprf_service import OprfService
    from research.command_registry import CommandRegistry
    from scanner.calibration import Params

__all__ = ["MODES", "ModeFigures", "loopback_service", "measure_modes", "register"]

#: (mode name, OPRF keys?, lookups per variant, padded?)
MODES: tuple[tuple[str, bool, int, bool], ...] = (
    ("offline", False, 384, True),
    ("oprf", True, 128, True),
    ("oprf-384", True, 384, True),
)
#: The offline snapshot as built before padding (tables sized for the real count): the padding's price.
UNPADDED: tuple[str, bool, int, bool] = ("offline-unpadded", False, 384, False)


@dataclass
class ModeFigures:
    """Measured figures of one snapshot mode."""

    mode: str
    params: dict[str, int]
    size_bytes: int
    predicted_recall: dict[int, float]
    match_ms_median: float
    match_ms_p90: float
    client_cpu_ms_median: float
    elements_per_image: float
    bytes_sent_per_image: float
    bytes_received_per_image: float
    service_cpu_ms_per_image: float
    enumeration_digests: int
    enumeration_core_hours: float | None
    account_days_at_limit: float | None


@contextmanager
def loopback_service(
    key: Any, *, per_minute: int = 1_000_000, per_day: int = 1_000_000
) -> Iterator[OprfService]:
    """A real OPRF service on 127.0.0.1 (OS-assigned port) in a background thread's event loop."""
    from client.authority.oprf_service import OprfService

    service = OprfService(key, host="127.0.0.1", port=0, per_minute=per_minute, per_day=per_day)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        await service.start()
        ready.set()
        await stop.wait()
        await service.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the OPRF service did not start")
    try:
        yield service
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _params_for(bank_size: int, lookups: int, padded: bool = True) -> Params:
    from scanner.calibration import calibrate, rounded_entry_count

    sized_for = rounded_entry_count(bank_size) if padded else bank_size
    return calibrate(sized_for, max_lookups=lookups).params


@dataclass
class _Timing:
    """What matching the queries cost in one mode (the OPRF fields stay 0 offline)."""

    times: list[float]
    cpu_times: list[float]
    sent: int = 0
    received: int = 0
    service_cpu: float = 0.0
    elements: int = 0


def _time_matches(matcher: Any, results: list[Any]) -> tuple[list[float], list[float]]:
    """(wall seconds, thread CPU seconds) of matching each result, after one warm-up match."""
    times: list[float] = []
    cpu_times: list[float] = []
    for r in results:
        t0, c0 = time.perf_counter(), time.thread_time()
        matcher.match(r)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
    return times, cpu_times


def _time_offline(data: bytes, authority: Any, now: int, results: list[Any]) -> _Timing:
    from scanner.matcher import Matcher

    matcher = Matcher(authority.public_key)
    matcher.load(data, now=now)
    matcher.match(results[0])  # warm-up
    return _Timing(*_time_matches(matcher, results))


def _time_oprf(data: bytes, authority: Any, now: int, results: list[Any], oprf_key: Any) -> _Timing:
    """Match through a real OPRF service on loopback; bytes and service CPU counted after the warm-up."""
    from scanner.matcher import Matcher
    from scanner.oprf_client import OprfServiceClient

    with loopback_service(oprf_key) as service:
        client = OprfServiceClient(service.url)
        matcher = Matcher(authority.public_key, oprf=client)
        matcher.load(data, now=now)
        matcher.match(results[0])  # warm-up (connect + handshake)
        s0, r0 = client.bytes_sent, client.bytes_received
        svc0, e0 = service.stats.cpu_seconds, service.stats.elements
        times, cpu_times = _time_matches(matcher, results)
        timing = _Timing(
            times,
            cpu_times,
            sent=client.bytes_sent - s0,
            received=client.bytes_received - r0,
            service_cpu=service.stats.cpu_seconds - svc0,
            elements=service.stats.elements - e0,
        )
        client.close()
    return timing


def measure_modes(
    bank_size: int,
    queries: list[tuple[bytes, tuple[bytes, ...]]],
    *,
    seed: int = 0,
    modes: tuple[tuple[str, bool, int, bool], ...] = MODES,
    per_day: int = 2000,
    measured_bank: int = 64,
) -> list[ModeFigures]:
    """Build one snapshot per mode and match ``queries`` (hash, 8 dihedral variants) through each.

    The parameters are calibrated for ``bank_size``; the timed snapshot holds ``measured_bank`` random hashes
    with those parameters, unpadded (the match cost depends on L and the Bloom geometry, not on the number of
    keys; the file size is the same). The reported size is the file's.
    """
    import numpy as np

    from scanner.authority import AuthorityKey

    rng = np.random.default_rng(seed)
    n = min(bank_size, measured_bank)
    bank = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    authority = AuthorityKey.generate()
    now = int(time.time())
    return [_measure_mode(mode, bank_size, bank, authority, now, queries, per_day=per_day) for mode in modes]


def _measure_mode(
    mode: tuple[str, bool, int, bool],
    bank_size: int,
    bank: Any,
    authority: Any,
    now: int,
    queries: list[tuple[bytes, tuple[bytes, ...]]],
    *,
    per_day: int,
) -> ModeFigures:
    """One mode's snapshot built, predicted and timed."""
    import numpy as np

    from scanner.calibration import predict, rounded_entry_count
    from scanner.hashers.base import HashResult
    from scanner.oprf import OprfKey
    from scanner.privacy import enumeration_cost
    from scanner.snapshot import build_snapshot

    name, oprf, lookups, padded = mode
    params = _params_for(bank_size, lookups, padded)
    oprf_key = OprfKey.generate() if oprf else None
    expires = now + 3600
    data = build_snapshot(bank, params=params, key=authority, version=1, created=now, expires=expires,
                          oprf_key=oprf_key, pad=False)
    cal = predict(params, rounded_entry_count(bank_size) if padded else bank_size)
    cost = enumeration_cost(params.tables, params.bits, oprf=oprf)
    results = [HashResult("pdq", 256, h, 100, dihedral=v) for h, v in queries]
    if oprf_key is None:
        timing = _time_offline(data, authority, now, results)
    else:
        timing = _time_oprf(data, authority, now, results, oprf_key)
    k = len(results)
    return ModeFigures(
        mode=name,
        params=params.build_options(),
        size_bytes=len(data),
        predicted_recall={d: cal.recall_at(d) for d in (16, 24, 31)},
        match_ms_median=1000 * statistics.median(timing.times),
        match_ms_p90=1000 * float(np.percentile(timing.times, 90)),
        client_cpu_ms_median=1000 * statistics.median(timing.cpu_times),
        elements_per_image=timing.elements / k,
        bytes_sent_per_image=timing.sent / k,
        bytes_received_per_image=timing.received / k,
        service_cpu_ms_per_image=1000 * timing.service_cpu / k,
        enumeration_digests=cost.digests,
        enumeration_core_hours=None if oprf else cost.core_hours,
        account_days_at_limit=cost.account_days(per_day) if oprf else None,
    )


def random_queries(count: int, seed: int) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """Random hashes, each with 8 random 'variants' (the first is the hash itself)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        vs = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(8)]
        out.append((vs[0], tuple(vs)))
    return out


def photo_queries(
    folder: str, limit: int
) -> tuple[list[tuple[bytes, tuple[bytes, ...]]], list[float], list[float]]:
    """PDQ hashes (8 variants) of the photos in ``folder``: (queries, megapixels, hash ms per photo)."""
    from PIL import Image

    from scanner.discovery import expand_image_paths
    from scanner.hashing import hash_file

    queries, mps, ms = [], [], []
    for path in list(expand_image_paths([folder]))[:limit]:
        with Image.open(path) as im:
            mps.append(im.width * im.height / 1e6)
        t0 = time.perf_counter()
        r = hash_file(path, dihedral=True)
        ms.append(1000 * (time.perf_counter() - t0))
        assert r.dihedral is not None
        queries.append((r.hash, tuple(r.dihedral)))
    return queries, mps, ms


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench oprf``."""
    bench = registry.group("bench")
    p = bench.command(
        "oprf",
        _handle,
        help="per-image latency, bytes and service CPU of OPRF-keyed lookups beside offline lookups",
        description=__doc__,
    )
    p.add_argument(
        "--bank-size", type=int, default=1024, metavar="N", help="bank size to calibrate for (default 1024)"
    )
    p.add_argument("--photos", metavar="DIR", help="hash these photos (default: random hashes)")
    p.add_argument("--images", type=int, default=40, metavar="N", help="queries per mode (default 40)")
    p.add_argument("--repeat", type=int, default=1, metavar="R", help="match every query R times (default 1)")
    p.add_argument(
        "--per-day", type=int, default=2000, help="service limit assumed for the enumeration figure"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def _handle(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import asdict

    if args.bank_size < 1 or args.images < 1:
        print("pocketscan bench oprf: --bank-size and --images must be at least 1", file=sys.stderr)
        return 2
    hash_ms: list[float] = []
    mps: list[float] = []
    if args.photos:
        if not Path(args.photos).is_dir():
            print(f"pocketscan bench oprf: no folder {args.photos}", file=sys.stderr)
            return 2
        queries, mps, hash_ms = photo_queries(args.photos, args.images)
        if not queries:
            print(f"pocketscan bench oprf: no images in {args.photos}", file=sys.stderr)
            return 2
    else:
        queries = random_queries(args.images, 0)
    figures = measure_modes(args.bank_size, queries * max(1, args.repeat), per_day=args.per_day)
    report = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "images": len(queries),
        "repeat": max(1, args.repeat),
        "photos_megapixels_median": statistics.median(mps) if mps else None,
        "hash_ms_median": statistics.median(hash_ms) if hash_ms else None,
        "modes": [asdict(f) for f in figures],
    }
    offline = figures[0].match_ms_median
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"{len(queries)} images x 8 dihedral variants, bank size {args.bank_size:,}; "
        f"load average {report['load_average'][0]:.2f} on {report['cpus']} cores"
    )
    if hash_ms:
        print(
            f"decode + PDQ (8 variants): median {report['hash_ms_median']:.0f} ms per photo "
            f"({report['photos_megapixels_median']:.1f} MP median)"
        )
    print(
        f"{'mode':10} {'L':>4} {'k':>3} {'MB':>6} {'match ms':>9} {'p90':>7} {'added':>7} {'keys':>6} "
        f"{'sent B':>8} {'recv B':>8} {'dev CPU ms':>10} {'svc CPU ms':>10} {'recall 16/24/31':>17}"
    )
    for f in figures:
        rec = "/".join(f"{f.predicted_recall[d]:.2f}" for d in (16, 24, 31))
        print(
            f"{f.mode:10} {f.params['tables']:4d} {f.params['bits']:3d} {f.size_bytes / 1e6:6.2f} "
            f"{f.match_ms_median:9.1f} {f.match_ms_p90:7.1f} {f.match_ms_median - offline:7.1f} "
            f"{f.elements_per_image:6.0f} {f.bytes_sent_per_image:8.0f} {f.bytes_received_per_image:8.0f} "
            f"{f.client_cpu_ms_median:10.1f} {f.service_cpu_ms_per_image:10.1f} {rec:>17}"
        )
    return 0
