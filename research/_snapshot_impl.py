"""Build a real signed snapshot and load it through the device matcher (see :mod:`research.snapshot_view`).

Everything goes through the scanner's public API: the hashes are imported into a real SQLite
:class:`scanner.bank.HashBank` (which dedupes them and gates quality below 50), its snapshot hashes are
sized by :func:`scanner.calibration.calibrate` (the parameters
``pocketscan snapshot build`` would pick) unless parameters are given, :func:`scanner.snapshot.build_snapshot`
signed by a throwaway :class:`scanner.authority.AuthorityKey`, written with
:func:`scanner.snapshot.write_snapshot_file`, mapped and verified by :class:`scanner.matcher.Matcher`. The
key, the LSH position seed, the digest salt and the padding decoys' seed are derived from the research
``--seed`` so that verdicts are reproducible; the key file (mode 0600) and ``snapshot.bin`` are left in the
work folder for inspection.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ResearchMatcher", "build"]

EXPIRY_S = 30 * 86400


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
    from scanner.authority import AuthorityKey
    from scanner.bank import HashBank, NewEntry
    from scanner.calibration import Params, calibrate_padded, predict, rounded_entry_count
    from scanner.hashers.spec import PDQ, quality_gate
    from scanner.matcher import Matcher
    from scanner.snapshot import build_snapshot, fingerprint_of, map_snapshot_file, write_snapshot_file

    workdir.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    bank_path = workdir / "bank.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{bank_path}{suffix}").unlink(missing_ok=True)
    with HashBank(bank_path) as bank:  # the authority's real bank: dedupes, gates quality, feeds the snapshot
        report = bank.add((NewEntry(algorithm=algo, hash=bytes(h).hex(), quality=int(q), source="research")
                           for h, q in zip(hashes, qualities, strict=True)), now=now)
        kept = [bytes(h) for h in bank.snapshot_hashes(algorithm=algo, now=now)]  # the algorithm's gate
    if not kept:
        return None, f"no bank hash has quality >= {quality_gate(algo)}: nothing to put in a snapshot"
    bits = len(kept[0]) * 8
    t0 = time.perf_counter()
    if params is None:
        from research.corpus import algo_info

        # The hasher's own rule is the step to approximate (PDQ 31 of 256 bits, the learned hash 25, pHash 8).
        p = calibrate_padded(len(kept), hash_bits=bits, target_distance=algo_info(algo).threshold).params
        how = "calibrated default for the hasher's threshold (as `pocketscan snapshot build`)"
    else:
        p = Params(hash_bits=bits, **params)
        how = "explicit"
    t_cal = time.perf_counter() - t0
    key = AuthorityKey(_derive(seed, algo, "authority-key"))
    key.save(workdir / "authority.key", force=True)
    t1 = time.perf_counter()
    data = build_snapshot(
        kept,
        params=p,
        key=key,
        version=1,
        created=now,
        expires=now + EXPIRY_S,
        algorithm=algo,
        seed=_derive(seed, algo, "lsh-seed"),
        salt=_derive(seed, algo, "salt"),
        decoy_seed=_derive(seed, algo, "decoy-seed"),  # padding decoys too, so verdicts are reproducible
        workers=1,
    )
    t_build = time.perf_counter() - t1
    path = workdir / "snapshot.bin"
    write_snapshot_file(path, data)
    matcher = Matcher(key.public_key)
    matcher.load(map_snapshot_file(path), now=now)
    cal = predict(p, rounded_entry_count(len(kept)))  # padded tables hold the rounded count of keys
    info = {
        "params": how,
        **p.build_options(),
        "entries": len(kept),
        "bank": str(bank_path),
        "bank_duplicate_hashes": report.duplicates,
        "size_bytes": len(data),
        "fingerprint": fingerprint_of(data),
        "public_key": key.public_hex,
        "calibration_s": round(t_cal, 3),
        "build_s": round(t_build, 3),
        "predicted_false_match_per_image": cal.false_match_per_image,
        "predicted_recall": {
            str(d): cal.recall_at(round(d * bits / PDQ.bits)) for d in (8, 16, 24, PDQ.match_distance)
        },
        "path": str(path),
    }
    return ResearchMatcher(matcher, algo, bits, info), ""
