"""OPRF-keyed snapshots: RFC 9497 vectors, the proof check, the wire format, header commitment, padding."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from scanner.authority import AuthorityKey
from scanner.calibration import Params, bloom_geometry, rounded_entry_count
from scanner.errors import OprfError, OprfProofInvalid, SnapshotInvalid
from scanner.hashers.base import HashResult
from scanner.matcher import Matcher
from scanner.oprf import (
    MAX_BATCH,
    OprfKey,
    blind_batch,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    lsh_input,
)
from scanner.snapshot import Header, build_snapshot
from scanner.snapshot.format import HEADER_SIZE

NOW = int(time.time())

# RFC 9497 appendix A.1.2, "OPRF(ristretto255, SHA-512)", mode VOPRF (mode 0x01):
# https://www.rfc-editor.org/rfc/rfc9497.html#appendix-A.1.2
RFC_SEED = bytes.fromhex("a3" * 32)
RFC_KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
RFC_PK_SM = bytes.fromhex("c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e")
RFC_VECTORS = [
    (
        bytes.fromhex("00"),
        bytes.fromhex(
            "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
            "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
        ),
    ),
    (
        bytes.fromhex("5a" * 17),
        bytes.fromhex(
            "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
            "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"
        ),
    ),
]


class _InProcess:
    """The service's evaluation without the network (unit tests; the e2e test uses the real service)."""

    def __init__(self, key: OprfKey) -> None:
        self.key = key
        self.calls = 0

    def evaluate(self, request: bytes, count: int) -> bytes:
        self.calls += 1
        self.last_count = count
        return self.key.evaluate_blinded([request[i * 32 : (i + 1) * 32] for i in range(count)])


def test_rfc9497_voprf_ristretto255_vectors() -> None:
    """DeriveKeyPair(seed, info) gives the RFC's pkSm; Evaluate gives the RFC's outputs; the blinded
    protocol (Blind, BlindEvaluate with a batch proof, Finalize) gives the same outputs. The binding draws its
    own blinds and proof nonces, so the vectors' BlindedElement and Proof bytes are not reproducible here."""
    from voprf import ristretto

    evaluator = ristretto.Evaluator.from_seed(RFC_SEED, RFC_KEY_INFO)
    assert bytes(evaluator.public_key.serialize()) == RFC_PK_SM
    for data, output in RFC_VECTORS:
        assert bytes(evaluator.evaluate_known_input(data)) == output
    pairs = [ristretto.Client.blind(data) for data, _ in RFC_VECTORS]
    batch = evaluator.evaluate_batch([b for _, b in pairs])
    outputs = ristretto.Client.finalize_batch([c for c, _ in pairs], batch, evaluator.public_key)
    assert [bytes(o) for o in outputs] == [o for _, o in RFC_VECTORS]


def test_blinded_batch_equals_direct_evaluation_and_hides_inputs() -> None:
    key = OprfKey.generate()
    inputs = [lsh_input(t, bytes([t, 7, 9])) for t in range(20)]
    batch = blind_batch(inputs)
    request = batch.request()
    for x in inputs:  # the service sees blinded elements only
        assert x not in request
    again = blind_batch(inputs)
    assert again.request() != request  # fresh blinds each time: the service cannot link repeats
    outputs = batch.finalize(key.evaluate_blinded(batch.elements), key.public_key)
    assert outputs == key.evaluate_inputs(inputs)


def test_wrong_key_evaluation_is_refused() -> None:
    right, wrong = OprfKey.generate(), OprfKey.generate()
    batch = blind_batch([b"a", b"b", b"c"])
    answer = wrong.evaluate_blinded(batch.elements)
    with pytest.raises(OprfProofInvalid, match="proof"):
        batch.finalize(answer, right.public_key)
    # a tampered element under the right key is refused too
    good = bytearray(right.evaluate_blinded(batch.elements))
    good[64:96] = wrong.evaluate_blinded(batch.elements)[64:96]
    with pytest.raises(OprfProofInvalid):
        batch.finalize(bytes(good), right.public_key)
    with pytest.raises(OprfError, match="malformed"):
        batch.finalize(bytes(good)[:-1], right.public_key)


def test_wire_frames_roundtrip_and_bounds() -> None:
    elements = b"".join(bytes([i]) * 32 for i in range(3))
    frame = encode_request(7, elements, 3)
    assert decode_request(frame) == (7, [bytes([i]) * 32 for i in range(3)])
    for bad in (frame[:-1], b"XXXX" + frame[4:], frame[:8] + b"\x00\x00"):
        with pytest.raises(OprfError):
            decode_request(bad)
    with pytest.raises(OprfError):
        encode_request(1, bytes(32 * (MAX_BATCH + 1)), MAX_BATCH + 1)
    assert decode_response(encode_response(9, bytes(64 + 32))) == (9, bytes(96))
    with pytest.raises(OprfError):
        decode_response(b"POR1" + bytes(10))
    key = OprfKey.generate()
    with pytest.raises(OprfError, match="ristretto255"):
        key.evaluate_blinded([b"\xff" * 32])


def test_key_file_is_private_and_roundtrips(tmp_path: Path) -> None:
    key = OprfKey.generate()
    path = tmp_path / "oprf.key"
    key.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert OprfKey.load(path).public_key == key.public_key
    with pytest.raises(OprfError, match="exists"):
        key.save(path)
    path.chmod(0o644)
    with pytest.raises(OprfError, match="readable by others"):
        OprfKey.load(path)


def _params(tables: int = 24, bits: int = 20) -> Params:
    m, h = bloom_geometry(1024 * tables, 1e-4)
    return Params(tables=tables, bits=bits, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)


def _bank(n: int, seed: int = 0) -> np.ndarray:
    return np.unique(np.random.default_rng(seed).integers(0, 256, size=(n, 32), dtype=np.uint8), axis=0)


def _result(h: bytes) -> HashResult:
    return HashResult(algo="pdq", bits=256, hash=h, quality=100)


def test_oprf_snapshot_commits_the_key_and_matches_only_through_the_service() -> None:
    bank = _bank(30, seed=1)
    oprf, authority = OprfKey.generate(), AuthorityKey.generate()
    data = build_snapshot(
        bank, params=_params(), key=authority, version=1, created=NOW, expires=NOW + 60, oprf_key=oprf
    )
    header = Header.unpack(data[:HEADER_SIZE])
    assert header.oprf_public_key == oprf.public_key and header.flags == 1
    assert header.to_json()["keys"] == "oprf"
    # The key is under the signature: flipping one of its bytes breaks verification.
    tampered = bytearray(data)
    tampered[192] ^= 1
    with pytest.raises(SnapshotInvalid):
        Matcher(authority.public_key).load(bytes(tampered), now=NOW)
    service = _InProcess(oprf)
    matcher = Matcher(authority.public_key, oprf=service)
    matcher.load(data, now=NOW)
    assert matcher.match(_result(bytes(bank[4]))).votes == 24
    assert service.calls == 1 and service.last_count == 24  # one batch per image, L elements
    # a symmetric image (all 8 variants equal) sends as many elements as any other: 8 L
    symmetric = HashResult(
        algo="pdq", bits=256, hash=bytes(bank[4]), quality=100, dihedral=(bytes(bank[4]),) * 8
    )
    assert matcher.match(symmetric).votes == 24 and service.last_count == 8 * 24
    assert matcher.match(_result(bytes(32))).outcome == "no_match"
    without = Matcher(authority.public_key)
    without.load(data, now=NOW)
    with pytest.raises(OprfError, match="no OPRF service"):
        without.match(_result(bytes(bank[4])))
    low = HashResult(algo="pdq", bits=256, hash=bytes(bank[4]), quality=10)
    calls = service.calls
    assert matcher.match(low).outcome == "low_quality" and service.calls == calls  # nothing sent
    matcher.set_oprf(_InProcess(OprfKey.generate()))
    with pytest.raises(OprfProofInvalid):
        matcher.match(_result(bytes(bank[4])))


def test_offline_digest_of_an_oprf_snapshot_finds_only_false_positives() -> None:
    from research.recovery import recover

    bank = _bank(12, seed=2)
    data = build_snapshot(
        bank,
        params=_params(tables=24, bits=14),
        key=AuthorityKey.generate(),
        version=1,
        created=NOW,
        expires=NOW + 60,
        oprf_key=OprfKey.generate(),
    )
    res = recover(data, budget_seconds=120)
    assert res.completed and res.digests == 24 * (1 << 14)
    assert res.recovered == 0
    # what the offline digest finds is Bloom noise: far fewer patterns than the (padded) 1024 per table
    assert max(res.patterns_per_table) < 50


def _table_counts(data: bytes) -> list[int]:
    from research.recovery import _offline_evaluator, enumerate_table

    header = Header.unpack(data[:HEADER_SIZE])
    body = np.frombuffer(data, dtype=np.uint8, count=header.body_length, offset=HEADER_SIZE)
    evaluate = _offline_evaluator(header)
    counts = []
    for t in range(header.tables):
        patterns, _ = enumerate_table(header, body, t, evaluate)
        assert patterns is not None
        counts.append(int(patterns.shape[0]))
    return counts


def test_padding_fills_every_table_to_the_rounded_count() -> None:
    bank = _bank(40, seed=3)
    params = _params(tables=8, bits=14)
    padded = build_snapshot(
        bank, params=params, key=AuthorityKey.generate(), version=1, created=NOW, expires=NOW + 60
    )
    rounded = rounded_entry_count(40)
    # every table: exactly the rounded count of keys (plus rare Bloom false positives)
    assert all(rounded <= c <= rounded + 12 for c in _table_counts(padded))
    plain = build_snapshot(
        bank, params=params, key=AuthorityKey.generate(), version=1, created=NOW, expires=NOW + 60, pad=False
    )
    assert all(c <= 40 + 12 for c in _table_counts(plain))
    # decoys are secret randomness: two builds of the same bank with the same seed and salt differ
    kw = dict(
        params=params,
        key=AuthorityKey(bytes(32)),
        version=1,
        created=NOW,
        expires=NOW + 60,
        seed=bytes(32),
        salt=bytes(32),
    )
    assert build_snapshot(bank, **kw) != build_snapshot(bank, **kw)  # type: ignore[arg-type]
    # and every bank hash still matches in every table
    matcher = Matcher(AuthorityKey(bytes(32)).public_key)
    matcher.load(build_snapshot(bank, **kw), now=NOW)  # type: ignore[arg-type]
    assert all(matcher.match(_result(bytes(row))).votes == 8 for row in bank)
