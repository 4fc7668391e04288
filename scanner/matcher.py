"""The on-device matcher: a pure object that holds the last good snapshot and matches hashes against it.

API (used by the client pipeline and the research toolkit)::

    from scanner.matcher import Matcher
    from scanner.snapshot import map_snapshot_file

    matcher = Matcher(pinned_public_key, min_version=last_version_seen)  # 32-byte Ed25519 key
    info = matcher.load(map_snapshot_file(path), now=time.time())        # or bytes; raises SnapshotInvalid
    result = matcher.match(hash_result)          # a scanner.hashers.base.HashResult (dihedral or not)
    result.outcome, result.votes, result.matched, result.snapshot_fingerprint  # a scanner.outcome.ScanOutcome
    verdict = matcher.verdict_for(image_bytes, hash_result)             # sealed scanner.verdict.ScanVerdict

* :meth:`Matcher.load` verifies the buffer (size, header, pinned key id, Ed25519 signature, body digest), then
  refuses expired snapshots (``now >= expires``), snapshots created more than a day in the future, versions
  lower than the last accepted one (rollback, including ``min_version`` given at construction), and a
  different file reusing the accepted version (also across restarts: pass the persisted floor as
  ``min_version`` and ``min_fingerprint``). Any refusal raises :class:`~scanner.errors.SnapshotInvalid`
  and leaves the previous snapshot in use. The buffer (bytes or a read-only ``mmap``) must stay unchanged
  while loaded: the Bloom body is read in place through ``bloom_filter2``, never copied.
* :meth:`Matcher.match` never matches hashes below the algorithm's quality gate (``scanner.hashers.spec``;
  PDQ: 50) (outcome ``low_quality``, zero votes: flat images collide at distance 0). Otherwise it derives
  the snapshot's L keys of each hash variant (the 8 dihedral variants when the result carries them), counts
  the tables whose key the Bloom filter holds, keeps the best variant, and decides ``match`` when votes >=
  the snapshot's minimum votes. The Bloom body is a ``bloom_filter2.BloomFilter`` (read-only mmap backend,
  keyed probe); by default all L x 8 lookups of one image run in one numpy pass over the same mapped bytes
  (``vectorised=False`` uses the package's ``__contains__`` key by key; a test proves both give the same
  votes).
* The matcher holds no clock, file or socket: time comes in as ``now``; :meth:`is_expired` lets the caller
  decide what to do when a loaded snapshot expires in use.

The matching model behind the parameters is in ``docs/matching.md``; the file format in
``docs/snapshot-format.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from bloom_filter2 import BloomFilter

from scanner.authority import key_id
from scanner.errors import OprfError, ScannerError, SnapshotInvalid
from scanner.hashers.base import HashResult
from scanner.hashers.spec import PDQ, quality_gate
from scanner.outcome import ScanOutcome
from scanner.snapshot.bloom import open_filter, present_many
from scanner.snapshot.format import Header
from scanner.snapshot.lsh import KeyDigester, neighbour_keys, table_positions
from scanner.snapshot.reader import Buffer, verify_snapshot
from scanner.verdict import ScanVerdict, issue_verdict, seal_outcome

__all__ = ["MIN_QUALITY", "MatchResult", "Matcher", "OprfTransport", "SnapshotInfo"]

MIN_QUALITY = PDQ.min_quality
"""Deprecated: the gate is the snapshot algorithm's (``scanner.hashers.spec``); this is PDQ's."""
MatchResult = ScanOutcome
"""Deprecated alias of :class:`scanner.outcome.ScanOutcome`, what :meth:`Matcher.match` returns."""

#: Tolerated clock skew for snapshots whose creation time lies in the device's future (seconds).
MAX_CLOCK_SKEW = 86_400

class OprfTransport(Protocol):
    """Carries one batch of blinded elements to the authority's OPRF service and back (the I/O side).

    ``evaluate(request, count)`` sends ``count`` blinded elements (``request``: 32 bytes each) and returns the
    service's answer (``proof || evaluated elements``); it raises :class:`~scanner.errors.OprfError` when the
    service is unreachable or refuses.
    """

    def evaluate(self, request: bytes, count: int) -> bytes: ...


@dataclass(frozen=True)
class SnapshotInfo:
    """What a device knows about its loaded snapshot.

    Attributes:
        header: the verified header.
        fingerprint: hex SHA-256 of the whole file.
    """

    header: Header
    fingerprint: str

    @property
    def version(self) -> int:
        """The snapshot version."""
        return self.header.snapshot_version

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: the fingerprint and every header field."""
        return {"fingerprint": self.fingerprint, "header": self.header.to_json()}


class _Loaded:
    """A verified snapshot ready for lookups."""

    def __init__(
        self, info: SnapshotInfo, bloom: BloomFilter, digester: KeyDigester, body: memoryview
    ) -> None:
        header = info.header
        self.info = info
        self.bloom = bloom
        self.digester = digester
        self.body: np.ndarray | None = np.frombuffer(body, dtype=np.uint8)
        self.positions = table_positions(header.seed, header.tables, header.bits, header.hash_bits)
        self.width = (header.bits + 7) // 8

    def votes_vectorised(self, hashes: list[bytes]) -> tuple[int, int]:
        """Best (votes, variant) with every lookup in one numpy pass over the mapped body (radius 0)."""
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(1, len(hashes), -1)
        votes, variant = self.votes_batch(arr)
        return int(votes[0]), int(variant[0])

    def votes_batch(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best (votes, variant) of each row of an ``(N, V, width)`` uint8 array, in one pass (radius 0)."""
        header = self.info.header
        assert self.body is not None
        n, v = arr.shape[0], arr.shape[1]
        flat = np.ascontiguousarray(arr).reshape(n * v, -1)
        keys = np.packbits(
            np.unpackbits(flat, axis=1, bitorder="big")[:, self.positions], axis=2, bitorder="big"
        )
        digests = b"".join(self.digester.digest_many(t, keys[:, t, :]) for t in range(header.tables))
        hit = present_many(self.body, digests, header.bloom_bits, header.bloom_hashes)
        counts = hit.reshape(header.tables, n, v).sum(axis=0)
        return counts.max(axis=1), counts.argmax(axis=1)

    def votes_oprf(self, hashes: list[bytes], transport: OprfTransport) -> tuple[int, int]:
        """Best (votes, variant) of an OPRF-keyed snapshot: every distinct key of every variant is blinded in
        one batch, evaluated by the service, checked against the committed key, unblinded and looked up."""
        from scanner.oprf import OprfDigester, blind_batch, lsh_input

        header = self.info.header
        assert self.body is not None
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), -1)
        keys = np.packbits(
            np.unpackbits(arr, axis=1, bitorder="big")[:, self.positions], axis=2, bitorder="big"
        )  # (V, L, w)
        index: dict[tuple[int, bytes], int] = {}
        slots = np.empty((len(hashes), header.tables), dtype=np.int64)
        for v in range(len(hashes)):
            for t in range(header.tables):
                slots[v, t] = index.setdefault((t, keys[v, t].tobytes()), len(index))
        inputs = [lsh_input(t, key) for (t, key) in index]
        # Pad to a constant size (L per variant) with random inputs, so that the number of distinct keys
        # (fewer for symmetric images, whose variants share keys) does not reach the service.
        real = len(inputs)
        inputs += [os.urandom(24) for _ in range(len(hashes) * header.tables - real)]
        batch = blind_batch(inputs)
        response = transport.evaluate(batch.request(), len(inputs))
        outputs = batch.finalize(response, header.oprf_public_key)[:real]
        digester = OprfDigester(header.salt, header.tables)
        digests = b"".join(digester.digest_output(t, out) for (t, _), out in zip(index, outputs, strict=True))
        hit = present_many(self.body, digests, header.bloom_bits, header.bloom_hashes)
        counts = hit[slots].sum(axis=1)
        best = int(np.argmax(counts))
        return int(counts[best]), best

    def votes(self, hashes: list[bytes]) -> tuple[int, int]:
        """Best (votes, variant index) over ``hashes``."""
        header = self.info.header
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), -1)
        bits = np.unpackbits(arr, axis=1, bitorder="big")
        keys = np.packbits(bits[:, self.positions], axis=2, bitorder="big")  # (V, L, w)
        raw = keys.tobytes()
        w = self.width
        per_variant = header.tables * w
        bloom = self.bloom
        best = (-1, 0)
        for v in range(len(hashes)):
            base = v * per_variant
            count = 0
            for t in range(header.tables):
                key = raw[base + t * w : base + (t + 1) * w]
                if (t, key) in bloom or (
                    header.probe_radius and any((t, nk) in bloom for nk in neighbour_keys(key, header.bits))
                ):
                    count += 1
            if count > best[0]:
                best = (count, v)
        return best

    def close(self) -> None:
        self.body = None
        self.bloom.close()


class Matcher:
    """Matches hashes against the last snapshot that passed verification (see the module docstring)."""

    def __init__(
        self,
        public_key: bytes,
        *,
        min_version: int = 0,
        min_fingerprint: str | None = None,
        min_quality: int | None = None,
        vectorised: bool = True,
        oprf: OprfTransport | None = None,
    ) -> None:
        if len(public_key) != 32:
            raise SnapshotInvalid("the pinned authority key must be 32 bytes")
        self._public_key = bytes(public_key)
        self._key_id = key_id(self._public_key)
        self._min_version = min_version
        self._min_fingerprint = min_fingerprint
        self._min_quality = min_quality
        self._vectorised = vectorised
        self._loaded: _Loaded | None = None
        self._oprf = oprf

    def set_oprf(self, transport: OprfTransport | None) -> None:
        """Use ``transport`` for OPRF-keyed snapshots (None: such snapshots make every match an error)."""
        self._oprf = transport

    @property
    def info(self) -> SnapshotInfo | None:
        """The snapshot in use, or None."""
        return None if self._loaded is None else self._loaded.info

    @property
    def last_accepted_version(self) -> int:
        """The highest version accepted so far (or ``min_version``): persist it to survive restarts."""
        return (
            self._min_version if self._loaded is None else max(self._min_version, self._loaded.info.version)
        )

    def load(self, data: Buffer, *, now: float) -> SnapshotInfo:
        """Verify ``data`` and switch to it; on any refusal keep the snapshot in use.

        Raises:
            SnapshotInvalid: with a message saying why (truncated, tampered, wrong signer, expired,
                rollback...).
        """
        verified = verify_snapshot(data, self._public_key)
        header = verified.header
        if now >= header.expires:
            raise SnapshotInvalid(
                f"expired snapshot: version {header.snapshot_version} expired at "
                f"{header.expires} (now {int(now)})"
            )
        if header.created > now + MAX_CLOCK_SKEW:
            raise SnapshotInvalid("snapshot created in the future: check the device clock")
        current = self._loaded.info if self._loaded is not None else None
        floor = self.last_accepted_version
        if header.snapshot_version < floor:
            raise SnapshotInvalid(
                f"rollback refused: snapshot version {header.snapshot_version} is older than version {floor}"
            )
        if (
            current is not None
            and header.snapshot_version == current.version
            and verified.fingerprint != current.fingerprint
        ):
            raise SnapshotInvalid(
                f"snapshot version {header.snapshot_version} reused with different content: refused"
            )
        if (
            current is None
            and self._min_fingerprint
            and header.snapshot_version == self._min_version
            and verified.fingerprint != self._min_fingerprint
        ):
            raise SnapshotInvalid(
                f"snapshot version {header.snapshot_version} reused with different content than the one "
                "accepted before: refused"
            )
        info = SnapshotInfo(header=header, fingerprint=verified.fingerprint)
        digester = KeyDigester(header.salt, header.tables)
        bloom = open_filter(verified.body, header.bloom_bits, header.bloom_hashes, digester)
        previous = self._loaded
        self._loaded = _Loaded(info, bloom, digester, verified.body)
        if previous is not None:
            previous.close()
        return info

    def is_expired(self, now: float) -> bool:
        """True when no snapshot is loaded or the loaded one has expired."""
        return self._loaded is None or now >= self._loaded.info.header.expires

    def match(self, result: HashResult) -> ScanOutcome:
        """Match one hash (and its dihedral variants if present): ``match``, ``no_match`` or ``low_quality``.

        Raises:
            SnapshotInvalid: no snapshot has been loaded.
            ScannerError: the hash's algorithm or width differs from the snapshot's.
        """
        loaded = self._loaded
        if loaded is None:
            raise SnapshotInvalid("no snapshot loaded: cannot match")
        header = loaded.info.header
        if result.algo != header.algorithm or result.bits != header.hash_bits:
            raise ScannerError(
                f"a {result.algo} hash of {result.bits} bits cannot be matched against a "
                f"{header.algorithm} snapshot of {header.hash_bits}-bit hashes"
            )
        fingerprint = loaded.info.fingerprint
        gate = quality_gate(header.algorithm) if self._min_quality is None else self._min_quality
        if result.quality < gate:
            return ScanOutcome(
                outcome="low_quality",
                votes=0,
                min_votes=header.min_votes,
                snapshot_fingerprint=fingerprint,
                snapshot_version=header.snapshot_version,
                variant=None,
                quality=result.quality,
                reason=f"hash quality {result.quality} is below {gate}: never matched",
            )
        variants = list(result.dihedral) if result.dihedral else [result.hash]
        if header.oprf_public_key:
            if self._oprf is None:
                raise OprfError("this snapshot's keys are OPRF outputs: no OPRF service configured (--oprf)")
            votes, variant = loaded.votes_oprf(variants, self._oprf)
        elif self._vectorised and header.probe_radius == 0:
            votes, variant = loaded.votes_vectorised(variants)
        else:
            votes, variant = loaded.votes(variants)
        return ScanOutcome(
            outcome="match" if votes >= header.min_votes else "no_match",
            votes=votes,
            min_votes=header.min_votes,
            snapshot_fingerprint=fingerprint,
            snapshot_version=header.snapshot_version,
            variant=variant,
            quality=result.quality,
            reason=f"{votes} of {header.tables} tables hit (match needs {header.min_votes})",
        )

    def votes_many(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Votes of many hashes at once, for research runs: ``(votes (N,), variant (N,), min_votes)``.

        ``hashes`` is ``(N, width)`` or, with dihedral variants, ``(N, V, width)`` uint8 of the snapshot's
        algorithm and width; each row gets the best of its variants, exactly as :meth:`match` would (the
        quality gate is the caller's job). Raises :class:`SnapshotInvalid` with no snapshot loaded.
        """
        loaded = self._loaded
        if loaded is None:
            raise SnapshotInvalid("no snapshot loaded: cannot match")
        header = loaded.info.header
        arr = hashes[:, None, :] if hashes.ndim == 2 else hashes
        if arr.ndim != 3 or arr.dtype != np.uint8 or arr.shape[2] * 8 != header.hash_bits:
            raise ScannerError(f"expected (N, [V,] {header.hash_bits // 8}) uint8 hashes, got {arr.shape}")
        if len(arr) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), header.min_votes
        if self._vectorised and header.probe_radius == 0:
            votes, variant = loaded.votes_batch(arr)
            return votes, variant, header.min_votes
        best = [loaded.votes([bytes(row) for row in rows]) for rows in arr]
        return (np.array([b[0] for b in best], np.int64), np.array([b[1] for b in best], np.int64),
                header.min_votes)

    def verdict_for(self, data: bytes, result: HashResult) -> ScanVerdict:
        """Match ``result`` (the hash of exactly ``data``); seal the outcome into a :class:`ScanVerdict`."""
        return seal_outcome(data, self.match(result), algo=result.algo)

    @staticmethod
    def error_verdict(data: bytes, reason: str) -> ScanVerdict:
        """A sealed ``error`` verdict for bytes that could not be hashed (the reason must not hold hashes)."""
        return issue_verdict(data, "error", reason=reason)
