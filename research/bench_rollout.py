"""`pocketscan bench rollout`: how long a reviewer's decision takes to be enforced by another client.

For each bank size (default 1k, 100k and 1M random PDQ hashes, plus the demo photos), with real processes
on loopback (a relay and `pocketscan authority serve` as subprocesses, two client profiles as in-process
:class:`~client.core.Core` objects connected to the relay):

1. client A protects a photo; the decision to accept it is recorded in the authority store (what
   ``authority review`` does); the time until client B has installed the snapshot that blocks the photo
   (``accept_to_enforced_s``), and the build and publish times ``authority serve`` recorded for it;
2. client B appeals; the acceptance removes the hashes; the time until B installs the snapshot without them
   (``appeal_to_enforced_s``);
3. a signed delta, estimated: the Bloom bits the accepted hashes would set in the snapshot B holds (same
   seed, salt and parameters), the time to compute them and the size of a delta file listing them
   (``delta_*``), against the full snapshot's size and build time. Removals cannot be expressed as a delta
   (a Bloom filter cannot clear bits), so they always rebuild.

The machine is shared: the figures carry ``uptime`` and are noisy; the build time grows with the bank, the
rest does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = [
    "InstallRecorder",
    "delta_estimate",
    "register",
    "relay_process",
    "run_rollout",
    "serve_process",
    "wait_until",
]

DEFAULT_SIZES = (1_000, 100_000, 1_000_000)


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench rollout``."""
    bench = registry.group("bench")
    p = bench.command("rollout", _handle, help="time from a review decision to another client enforcing it",
                      description=__doc__)
    p.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES), metavar="N,N,...",
                   help="bank sizes (random PDQ hashes) (default: %(default)s)")
    p.add_argument("--photo", type=Path, default=None,
                   help="the photo client A protects (default: the bundled chelsea.jpg, "
                        "`pocketscan samples chelsea.jpg`)")
    p.add_argument("--json", action="store_true", help="one JSON line per bank size")


def _handle(args: argparse.Namespace) -> int:
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print("pocketscan bench rollout: --sizes is a comma-separated list of integers", file=sys.stderr)
        return 2
    if args.photo is None:
        from client.samples import SamplesMissing, sample_path

        try:
            args.photo = sample_path("chelsea.jpg")
        except SamplesMissing as exc:
            print(f"pocketscan bench rollout: {exc}", file=sys.stderr)
            return 2
    if not sizes or min(sizes) < 0 or not args.photo.is_file():
        print("pocketscan bench rollout: need sizes >= 0 and an existing --photo", file=sys.stderr)
        return 2
    import signal

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(130)  # run the finally blocks: stop the relay and serve subprocesses

    signal.signal(signal.SIGTERM, _terminate)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# load averages (1, 5, 15 min): {load}", file=sys.stderr)
    for size in sizes:
        result = run_rollout(size, args.photo, progress=lambda line: print(f"  {line}", file=sys.stderr))
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"bank {size}: build {result['build_s']:.2f} s ({result['snapshot_bytes']} bytes), "
                  f"accept -> enforced {result['accept_to_enforced_s']:.2f} s, appeal -> enforced "
                  f"{result['appeal_to_enforced_s']:.2f} s; delta: {result['delta_bits']} bits, "
                  f"{result['delta_bytes']} bytes, {result['delta_compute_s'] * 1000:.1f} ms", flush=True)
    return 0


# ----- processes -------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    """The subprocesses run this interpreter's installed pocketscan, wherever the working directory is."""
    return dict(os.environ)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def relay_process(root: Path, authority_hex: str) -> Iterator[str]:
    """`pocketscan relay` as a subprocess on a free loopback port; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "client.cli.main", "relay", "--port", "0", "--quiet",
                             "--db", str(root / "relay.sqlite"), "--authority-pubkey", authority_hex],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the relay did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield str(json.loads(line)["listening"])
    finally:
        _stop(proc)


@contextlib.contextmanager
def serve_process(root: Path, key: Path, bank: Path, store: Path, relay: str,
                  *extra: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`pocketscan authority serve` as a subprocess; yields it and the file its progress lines go to."""
    log = root / "serve.log"
    with open(log, "w") as fh:
        command = [sys.executable, "-m", "client.cli.main", "authority", "serve", "--key", str(key),
                   "--bank", str(bank), "--store", str(store), "--relay", relay, "--poll", "0.1", *extra]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=fh, text=True, cwd=root,
                                env=_env())
        try:
            yield proc, log
        finally:
            _stop(proc)


# ----- the measurement --------------------------------------------------------------------------------
def _random_bank(path: Path, size: int) -> None:
    import numpy as np

    from scanner.bank import HashBank, NewEntry

    rng = np.random.default_rng(size)
    with HashBank(path) as bank:
        for start in range(0, size, 100_000):
            block = rng.integers(0, 256, size=(min(100_000, size - start), 32), dtype=np.uint8)
            bank.add((NewEntry("pdq", bytes(row).hex(), 100, label="random", origin="bench")
                      for row in block), now=int(time.time()))
        bank.add([NewEntry("pdq", "c3" * 32, 100, label="filler", origin="bench")], now=int(time.time()))


def delta_estimate(snapshot: bytes, new_hashes: list[bytes]) -> dict[str, Any]:
    """Bloom bits ``new_hashes`` would add to ``snapshot`` (same seed, salt, parameters): count, size,
    time to compute."""
    import numpy as np

    from scanner.snapshot.bloom import probe_bits
    from scanner.snapshot.format import HEADER_SIZE, Header
    from scanner.snapshot.lsh import KeyDigester, hash_bits_matrix, table_positions

    started = time.perf_counter()
    header = Header.unpack(snapshot[:HEADER_SIZE])
    body = memoryview(snapshot)[HEADER_SIZE:HEADER_SIZE + header.body_length]
    packed = np.frombuffer(b"".join(new_hashes), dtype=np.uint8).reshape(-1, header.hash_bits // 8)
    positions = table_positions(header.seed, header.tables, header.bits, header.hash_bits)
    digester = KeyDigester(header.salt, header.tables)
    bits = hash_bits_matrix(packed)
    touched: set[int] = set()
    for t in range(header.tables):
        keys = np.packbits(bits[:, positions[t]], axis=1, bitorder="big")
        digests = digester.digest_many(t, keys)
        for i in range(0, len(digests), 16):
            touched.update(probe_bits(digests[i:i + 16], header.bloom_bits, header.bloom_hashes))
    new = sorted(b for b in touched if not body[b // 8] >> (b % 8) & 1)
    seconds = time.perf_counter() - started
    index_bytes = 4 if header.bloom_bits < 2**32 else 8
    return {"delta_bits": len(new), "delta_bits_touched": len(touched),
            "delta_bytes": len(new) * index_bytes + HEADER_SIZE + 64, "delta_compute_s": seconds}


class InstallRecorder:
    """Subscribes to a core's events and records when each snapshot version was installed (wall clock)."""

    def __init__(self, core: Any) -> None:
        self.installed: dict[int, float] = {}
        core.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        from client.interfaces import SnapshotChanged

        if isinstance(event, SnapshotChanged) and event.status.version is not None:
            self.installed.setdefault(event.status.version, time.time())

    def newer_than(self, version: int) -> int:
        """The newest installed version above ``version`` (0 if none yet)."""
        return max((v for v in self.installed if v > version), default=0)


async def wait_until(cond: Any, timeout: float, what: str) -> Any:
    """Poll ``cond()`` every 50 ms until it is truthy and return its value; RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def run_rollout(size: int, photo: Path, *, progress: Any = lambda line: None) -> dict[str, Any]:
    """Measure one bank size (see the module docstring); returns the figures."""
    from client.authority.store import AuthorityStore
    from client.demo.world import AuthorityIdentity, make_profile
    from client.protect import submit_appeal, submit_protection
    from scanner.authority import AuthorityKey

    with tempfile.TemporaryDirectory(prefix="pocketscan-rollout-") as tmp:
        root = Path(tmp)
        key = AuthorityKey.generate()
        key.save(root / "authority.key")
        bank, store_path = root / "bank.sqlite", root / "store.sqlite"
        progress(f"bank of {size} random PDQ hashes")
        _random_bank(bank, size)
        wait = 120.0 + size / 2_000  # generous: a 1M bank builds in minutes on a loaded 2-core machine
        result: dict[str, Any] = {"bank": size, "date": time.strftime("%Y-%m-%d"), "load": os.getloadavg()[0]}
        with relay_process(root, key.public_hex) as relay, \
                serve_process(root, root / "authority.key", bank, store_path, relay) as (serve, _log):
            authority = AuthorityIdentity(key.seed)

            async def main() -> None:
                alice = make_profile(root, "alice", relay=relay, authority=authority, policy="block")
                bob = make_profile(root, "bob", relay=relay, authority=authority, policy="block")
                recorder = InstallRecorder(bob)
                installed = recorder.installed
                try:
                    await alice.start()
                    await bob.start()
                    progress("waiting for the first snapshot")
                    slot = bob.snapshot.slot
                    await wait_until(lambda: slot.current is not None, wait, "the first snapshot")
                    first = bob.snapshot.slot.current.version  # type: ignore[union-attr]
                    before = bob.profile.snapshot_file.read_bytes()  # what a delta would be applied to
                    sub = submit_protection(alice, photo.read_bytes(), name=photo.name)
                    store = AuthorityStore(store_path)
                    try:
                        submissions = await wait_until(lambda: store.items(kind="submission"), 60,
                                                       "the submission")
                        item = submissions[0]
                        decided = store.decide(item.id, accept=True, note="bench", reviewer="bench")
                        progress("accepted; waiting for client B to enforce it")
                        version = await wait_until(lambda: recorder.newer_than(first), wait,
                                               "the accept's snapshot")
                        result["accept_to_enforced_s"] = installed[version] - decided.decided_at
                        built = next(s for s in store.snapshots() if s["version"] == version)
                        result.update(build_s=built["build_seconds"], publish_s=built["publish_seconds"],
                                      snapshot_bytes=built["size"], snapshot_entries=built["entries"])
                        result.update(delta_estimate(before, [bytes.fromhex(h) for h in
                                                              (sub.hashes.pdq, *sub.hashes.pdq_dihedral)]))
                        await submit_appeal(bob, photo.read_bytes(), name=photo.name, reason="bench")
                        appeal = (await wait_until(lambda: store.items(kind="appeal"), 60, "the appeal"))[0]
                        decided = store.decide(appeal.id, accept=True, note="bench", reviewer="bench")
                        progress("appeal accepted; waiting for client B to enforce it")
                        removed = await wait_until(lambda: recorder.newer_than(version), wait,
                                               "the appeal's snapshot")
                        result["appeal_to_enforced_s"] = installed[removed] - decided.decided_at
                        rebuilt = next(s for s in store.snapshots() if s["version"] == removed)
                        result["appeal_build_s"] = rebuilt["build_seconds"]
                    finally:
                        store.close()
                finally:
                    await alice.stop()
                    await bob.stop()

            asyncio.run(main())
            if serve.poll() is not None:
                raise RuntimeError("authority serve exited during the measurement")
        return result
