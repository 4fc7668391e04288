"""Build a real signed snapshot and load it through the device matcher (see :mod:`research.snapshot_view`).

Everything goes through the authority workflow (:mod:`scanner.snapshot.workflow`), the steps
``pocketscan snapshot build`` runs: the hashes are imported into a real SQLite :class:`scanner.bank.HashBank`
(which dedupes them and gates quality), its snapshot hashes are sized by the padded calibration unless
parameters are given, built and signed by a throwaway :class:`scanner.authority.AuthorityKey`, written
atomically, mapped and verified by :class:`scanner.matcher.Matcher`. The
key, the LSH position seed, the digest salt and the padding decoys' seed are derived from the research
``--seed`` so that verdicts are reproducible; the key file (mode 0600) and ``snapshot.bin`` are left in the
work folder for inspection.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.authority import AuthorityKey
    from scanner.snapshot.workflow import SignedSnapshot, SnapshotPlan

__all__ = ["ResearchMatcher", "build"]

EXPIRY_DAYS = 30.0


def _derive(seed: int, algo: str, what: str) -> bytes:
    return hashlib.sha256(f"pocketscan-research/{what}/{algo}/{seed}".encode()).digest()


class ResearchMatcher:
    """A loaded snapshot; ``match(hash, dihedral)`` -> (matched, votes)."""

    def __init__(self, matcher: Any, algo: str, bits: int, info: dict[str, Any]) -> None:
        self._matcher = matcher
        self._algo = algo
        self._bits = bits
        self._info = info

    def match(self, h: bytes, dihedral: Sequence[bytes] | None) -> tuple[bool, int]:
        from scanner.hashers.base import HashResult

        result = HashResult(
            algo=self._algo,
            bits=self._bits,
            hash=bytes(h),
            quality=100,
            dihedral=tuple(bytes(v) for v in dihedral) if dihedral else None,
        )
        out = self._matcher.match(result)
        return bool(out.matched), int(out.votes)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    @property
    def device(self) -> Any:
        """The device's :class:`scanner.matcher.Matcher` behind this adapter."""
        return self._matcher


def build(
    algo: str,
    hashes: Sequence[bytes],
    qualities: Sequence[int],
    workdir: Path,
    *,
    seed: int = 0,
    params: dict[str, int] | None = None,
) -> tuple[ResearchMatcher | None, str]:
    """Bank -> dedupe -> calibrate (padded) -> sign -> write through :mod:`scanner.snapshot.workflow`, then
    load the file in the device matcher. Returns ``(None, why)`` when no hash passes the quality gate."""
    from scanner.authority import AuthorityKey
    from scanner.hashers.spec import quality_gate
    from scanner.matcher import Matcher
    from scanner.snapshot import map_snapshot_file
    from scanner.snapshot import workflow as wf

    workdir.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    bank_path = workdir / "bank.sqlite"
    # the authority's real bank: dedupes, gates quality, feeds the snapshot
    report = wf.seed_bank(bank_path, algo, hashes, qualities, source="research", now=now)
    kept = wf.load_bank(bank_path, wf.SnapshotPlan(algorithm=algo), now=now)  # the algorithm's gate
    if not kept:
        return None, f"no bank hash has quality >= {quality_gate(algo)}: nothing to put in a snapshot"
    bits = len(kept[0]) * 8
    plan, how = _plan(algo, bits, seed, params)
    key = AuthorityKey(_derive(seed, algo, "authority-key"))
    key.save(workdir / "authority.key", force=True)
    sizing = wf.calibrate_for(kept, plan)
    snapshot = wf.build_signed(kept, sizing, key, plan, now=now, privacy=wf.privacy_cost(sizing.params, plan))
    path = wf.write_snapshot(workdir / "snapshot.bin", snapshot)
    matcher = Matcher(key.public_key)
    matcher.load(map_snapshot_file(path), now=now)
    info = _info(how, snapshot, report.duplicates, bank_path, key, path)
    return ResearchMatcher(matcher, algo, bits, info), ""


def _plan(algo: str, bits: int, seed: int, params: dict[str, int] | None) -> tuple[SnapshotPlan, str]:
    """The workflow plan: version 1, one build process, seeds derived from ``seed`` (reproducible verdicts,
    padding decoys too); the hasher's own threshold as the calibration target unless ``params`` are given."""
    from scanner.calibration import Params
    from scanner.snapshot.workflow import BuildSeeds, SnapshotPlan

    seeds = BuildSeeds(_derive(seed, algo, "lsh-seed"), _derive(seed, algo, "salt"),
                       _derive(seed, algo, "decoy-seed"))
    plan = SnapshotPlan(algorithm=algo, version=1, valid_days=EXPIRY_DAYS, workers=1, seeds=seeds)
    if params is not None:
        return replace(plan, params=Params(hash_bits=bits, **params)), "explicit"
    from research.corpus import algo_info

    # The hasher's own rule is the step to approximate (PDQ 31 of 256 bits, the learned hash 25, pHash 8).
    how = "calibrated default for the hasher's threshold (as `pocketscan snapshot build`)"
    return replace(plan, target_distance=algo_info(algo).threshold), how


def _info(how: str, snapshot: SignedSnapshot, duplicates: int, bank_path: Path, key: AuthorityKey,
          path: Path) -> dict[str, Any]:
    from scanner.hashers.spec import PDQ

    cal, bits = snapshot.sizing.calibration, snapshot.params.hash_bits
    return {
        "params": how,
        **snapshot.params.build_options(),
        "entries": snapshot.entries,
        "bank": str(bank_path),
        "bank_duplicate_hashes": duplicates,
        "size_bytes": len(snapshot.data),
        "fingerprint": snapshot.fingerprint,
        "public_key": key.public_hex,
        "calibration_s": round(snapshot.sizing.seconds, 3),
        "build_s": round(snapshot.build_seconds, 3),
        "predicted_false_match_per_image": cal.false_match_per_image,
        "predicted_recall": {
            str(d): cal.recall_at(round(d * bits / PDQ.bits)) for d in (8, 16, 24, PDQ.match_distance)
        },
        "path": str(path),
    }
