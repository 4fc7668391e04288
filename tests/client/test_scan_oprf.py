"""The messenger's scanner with an OPRF-keyed snapshot: matches through the service, and a refusing or
unreachable service makes the scan an error that the policy treats as it treats having no snapshot."""

from __future__ import annotations

import time

import numpy as np

from client.policy import decide
from client.scanning import LocalScanner, SnapshotSlot, load_snapshot_view
from scanner.authority import AuthorityKey
from scanner.calibration import Params, bloom_geometry
from scanner.hashers.base import HashResult
from scanner.oprf import OprfKey
from scanner.oprf_client import OprfServiceClient
from scanner.snapshot import build_snapshot

NOW = int(time.time())


class _Service:
    def __init__(self, key: OprfKey) -> None:
        self.key = key

    def evaluate(self, request: bytes, count: int) -> bytes:
        return self.key.evaluate_blinded([request[i * 32 : (i + 1) * 32] for i in range(count)])


def _snapshot(bank: np.ndarray, oprf: OprfKey, authority: AuthorityKey) -> bytes:
    m, h = bloom_geometry(1024 * 16, 1e-4)
    params = Params(tables=16, bits=16, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)
    return build_snapshot(bank, params=params, key=authority, version=1, created=NOW, expires=NOW + 600,
                          oprf_key=oprf)


def test_local_scanner_matches_through_oprf_and_errors_without_it() -> None:
    bank = np.random.default_rng(4).integers(0, 256, size=(5, 32), dtype=np.uint8)
    oprf, authority = OprfKey.generate(), AuthorityKey.generate()
    data = _snapshot(bank, oprf, authority)
    hashed = HashResult("pdq", 256, bytes(bank[2]), 90, dihedral=(bytes(bank[2]),) * 8)

    slot = SnapshotSlot()
    slot.swap(load_snapshot_view(data, authority.public_key, now=NOW, oprf=_Service(oprf)))
    scanner = LocalScanner(slot, clock=lambda: NOW)
    assert scanner.match(hashed).outcome == "match"

    down = SnapshotSlot()
    down.swap(load_snapshot_view(data, authority.public_key, now=NOW,
                                 oprf=OprfServiceClient("ws://127.0.0.1:9", timeout=2)))
    scan = LocalScanner(down, clock=lambda: NOW).match(hashed)
    assert scan.outcome == "error" and "unreachable" in scan.reason
    no_snapshot = LocalScanner(SnapshotSlot()).match(hashed)
    for policy in ("off", "warn", "block", "report"):  # decided exactly as without a snapshot
        assert decide(scan, policy).action == decide(no_snapshot, policy).action

    rogue = SnapshotSlot()  # a service evaluating under another key is refused by the proof check
    rogue.swap(load_snapshot_view(data, authority.public_key, now=NOW, oprf=_Service(OprfKey.generate())))
    scan = LocalScanner(rogue, clock=lambda: NOW).match(hashed)
    assert scan.outcome == "error" and "proof" in scan.reason
