"""Snapshot format, Bloom bits (numpy writer == bloom_filter2), privacy, and every refusal keeping the last
good one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from bloom_filter2 import BloomFilter

from client.cli.main import main
from scanner.authority import AuthorityKey
from scanner.calibration import Params, bloom_geometry, calibrate, calibrate_padded
from scanner.errors import SnapshotInvalid
from scanner.hashers.base import HashResult
from scanner.matcher import Matcher
from scanner.snapshot import Header, build_snapshot, fingerprint_of, map_snapshot_file, verify_snapshot
from scanner.snapshot.bloom import BloomWriter, KeyedProbe, open_filter, probe_bits
from scanner.snapshot.format import HEADER_SIZE
from scanner.snapshot.lsh import KeyDigester, hash_bits_matrix, key_bytes, keys_for_bits, table_positions

NOW = 1_800_000_000
REPO = Path(__file__).resolve().parents[2]


def _bank(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32), dtype=np.uint8)


def _small_params(n: int = 200) -> Params:
    m, h = bloom_geometry(1024 * 20, 1e-4)
    return Params(tables=20, bits=16, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)


@pytest.fixture(scope="module")
def key() -> AuthorityKey:
    return AuthorityKey.generate()


def _snap(
    key: AuthorityKey,
    bank: np.ndarray,
    *,
    version: int = 1,
    expires: int = NOW + 86400,
    params: Params | None = None,
) -> bytes:
    return build_snapshot(
        bank, params=params or _small_params(), key=key, version=version, created=NOW - 10, expires=expires
    )


def test_numpy_writer_equals_bloom_filter2_bit_for_bit(tmp_path: Path) -> None:
    """The vectorised writer sets exactly the bits bloom_filter2 (mmap backend, our keyed probe) sets."""
    params = _small_params()
    bank = _bank(300, seed=3)
    salt, seed = os.urandom(32), os.urandom(32)
    positions = table_positions(seed, params.tables, params.bits)
    digester = KeyDigester(salt, params.tables)
    keys = keys_for_bits(hash_bits_matrix(bank), positions)  # (N, L, w)
    # Package side: its own mmap backend on a file, our probe function, keys added one at a time.
    pkg = BloomFilter(max_elements=1, error_rate=0.5, probe_bitnoer=KeyedProbe(digester))
    pkg.num_bits_m, pkg.num_probes_k = params.bloom_bits, params.bloom_hashes
    from bloom_filter2.bloom_filter import Mmap_backend

    pkg.backend = Mmap_backend(params.bloom_bits, str(tmp_path / "pkg.bits"))
    for i in range(bank.shape[0]):
        for t in range(params.tables):
            pkg.add((t, keys[i, t].tobytes()))
    pkg_bits = bytes(pkg.backend.mmap[: params.bloom_bits // 8])
    pkg.close()
    writer = BloomWriter(params.bloom_bits, params.bloom_hashes)
    writer.add_digests(b"".join(digester.digest_many(t, keys[:, t, :]) for t in range(params.tables)))
    assert writer.body() == pkg_bits
    assert 0.05 < writer.fill_ratio() < 0.9
    # And the reference arithmetic agrees with both.
    d = digester.digest(2, keys[5, 2].tobytes())
    assert all(pkg_bits[j // 8] >> (j % 8) & 1 for j in probe_bits(d, params.bloom_bits, params.bloom_hashes))
    assert key_bytes(hash_bits_matrix(bank)[5], positions[2]) == keys[5, 2].tobytes()


def test_parallel_and_single_process_builds_are_identical(key: AuthorityKey) -> None:
    import scanner.snapshot.builder as builder

    bank = _bank(2000, seed=5)
    params = _small_params()
    kwargs = dict(
        params=params, key=key, version=3, created=NOW, expires=NOW + 5, seed=b"s" * 32, salt=b"t" * 32,
        decoy_seed=b"d" * 32,
    )
    single = build_snapshot(bank, workers=1, **kwargs)  # type: ignore[arg-type]
    old = builder._PARALLEL_MIN_KEYS
    builder._PARALLEL_MIN_KEYS = 1
    try:
        parallel = build_snapshot(bank, workers=2, **kwargs)  # type: ignore[arg-type]
    finally:
        builder._PARALLEL_MIN_KEYS = old
    assert single == parallel


def test_header_roundtrip_and_no_raw_hash_in_file(key: AuthorityKey) -> None:
    bank = _bank(100, seed=1)
    data = _snap(key, bank)
    v = verify_snapshot(data, key.public_key)
    h = v.header
    assert (h.tables, h.bits, h.min_votes, h.snapshot_version, h.entry_count, h.key_id) == (
        20,
        16,
        3,
        1,
        1024,
        key.key_id,
    )
    assert Header.unpack(data[:HEADER_SIZE]) == h
    assert v.fingerprint == fingerprint_of(data) and len(v.fingerprint) == 64
    assert len(data) == h.file_size
    for row in bank:
        raw = row.tobytes()
        for start in range(0, 32 - 7, 4):  # no 8-byte window of any bank hash appears in the file
            assert raw[start : start + 8] not in data
    # Entry count is rounded up: 100 and 1000 entries give the same header field.
    assert verify_snapshot(_snap(key, _bank(1000)), key.public_key).header.entry_count == 1024


def test_matcher_finds_near_duplicates_not_strangers(key: AuthorityKey) -> None:
    bank = _bank(200, seed=2)
    params = calibrate(200).params
    matcher = Matcher(key.public_key)
    matcher.load(_snap(key, bank, params=params), now=NOW)
    rng = np.random.default_rng(9)
    for row in bank[:20]:
        bits = np.unpackbits(row)
        bits[rng.choice(256, 8, replace=False)] ^= 1
        assert matcher.match(HashResult("pdq", 256, np.packbits(bits).tobytes(), 80)).outcome == "match"
    strangers = [matcher.match(HashResult("pdq", 256, rng.bytes(32), 80)).outcome for _ in range(200)]
    assert strangers.count("match") == 0


class TestRefusals:
    """Tampered, truncated, wrongly signed, expired, rolled-back snapshots are refused; the last good
    stays."""

    @pytest.fixture()
    def loaded(self, key: AuthorityKey) -> tuple[Matcher, bytes, np.ndarray]:
        bank = _bank(50, seed=4)
        good = _snap(key, bank, version=5)
        matcher = Matcher(key.public_key)
        matcher.load(good, now=NOW)
        return matcher, good, bank

    def _assert_kept(self, matcher: Matcher, good: bytes, bank: np.ndarray) -> None:
        assert matcher.info is not None and matcher.info.fingerprint == fingerprint_of(good)
        assert matcher.match(HashResult("pdq", 256, bank[0].tobytes(), 90)).outcome == "match"

    def _refused(self, matcher: Matcher, data: bytes | bytearray, match: str, now: float = NOW) -> None:
        with pytest.raises(SnapshotInvalid, match=match):
            matcher.load(data, now=now)

    def test_tampered_body(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        bad = bytearray(_snap(key, bank, version=6))
        bad[HEADER_SIZE + 100] ^= 0x01
        self._refused(matcher, bad, "tampered")
        self._assert_kept(matcher, good, bank)

    def test_tampered_header(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        bad = bytearray(_snap(key, bank, version=6))
        bad[55] ^= 0x01  # min votes 3 -> 2: a valid header, but not the signed one
        self._refused(matcher, bad, "signature")
        bad = bytearray(_snap(key, bank, version=6))
        bad[0] ^= 0xFF
        self._refused(matcher, bad, "magic")
        self._assert_kept(matcher, good, bank)

    def test_truncated(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        new = _snap(key, bank, version=6)
        for cut in (0, 10, HEADER_SIZE, len(new) // 2, len(new) - 1):
            self._refused(matcher, new[:cut], "truncated")
        self._refused(matcher, new + b"\0", "trailing")
        self._assert_kept(matcher, good, bank)

    def test_wrongly_signed(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        other = AuthorityKey.generate()
        self._refused(matcher, _snap(other, bank, version=6), "different authority")
        forged = bytearray(_snap(key, bank, version=6))
        forged[-64:] = other.sign(bytes(forged[:HEADER_SIZE]))
        self._refused(matcher, forged, "signature")
        self._assert_kept(matcher, good, bank)

    def test_expired(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        self._refused(matcher, _snap(key, bank, version=6, expires=NOW), "expired")
        self._refused(matcher, _snap(key, bank, version=6, expires=NOW + 50), "expired", now=NOW + 50)
        assert matcher.is_expired(NOW + 86400) and not matcher.is_expired(NOW)
        self._assert_kept(matcher, good, bank)

    def test_rolled_back(self, key: AuthorityKey, loaded: tuple[Matcher, bytes, np.ndarray]) -> None:
        matcher, good, bank = loaded
        self._refused(matcher, _snap(key, bank, version=4), "rollback")
        self._refused(matcher, _snap(key, bank, version=5), "reused")
        assert matcher.load(good, now=NOW).version == 5  # the same file again is fine
        self._assert_kept(matcher, good, bank)
        newer = _snap(key, bank, version=7)
        assert matcher.load(newer, now=NOW).version == 7
        self._refused(matcher, good, "rollback")
        # Rollback protection survives a restart through min_version.
        fresh = Matcher(key.public_key, min_version=matcher.last_accepted_version)
        self._refused(fresh, good, "rollback")
        assert fresh.info is None


def test_read_only_mmap_body(tmp_path: Path, key: AuthorityKey) -> None:
    path = tmp_path / "snap.bin"
    path.write_bytes(_snap(key, _bank(30)))
    mapped = map_snapshot_file(path)
    v = verify_snapshot(mapped, key.public_key)
    bloom = open_filter(v.body, v.header.bloom_bits, v.header.bloom_hashes, KeyDigester(v.header.salt, 1))
    with pytest.raises(TypeError):
        bloom.add((0, b"\0\0"))
    bloom.close()
    with pytest.raises(SnapshotInvalid, match="no such snapshot"):
        map_snapshot_file(tmp_path / "missing.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(SnapshotInvalid, match="empty"):
        map_snapshot_file(tmp_path / "empty.bin")


def test_cli_build_verify_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keyfile, bank, snap = tmp_path / "A.key", tmp_path / "bank.sqlite", tmp_path / "snap.bin"
    assert main(["authority", "keygen", "--out", str(keyfile)]) == 0
    pub = capsys.readouterr().out.strip()
    samples = sorted((REPO / "samples").glob("*.jpg"))
    assert main(["bank", "import", "--bank", str(bank), str(samples[0]), str(samples[1])]) == 0
    capsys.readouterr()

    def build(version: int, *options: str) -> int:
        return main(["snapshot", "build", "--bank", str(bank), "--key", str(keyfile), "--out", str(snap),
                     "--version", str(version), "--allow-weak-privacy", *options, "--json"])

    assert build(3, "--tables", "40", "--bits", "20", "--min-votes", "3") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tables"] == 40 and report["entries"] == 2
    assert main(["snapshot", "verify", str(snap), "--pubkey", pub]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (
        out["valid"]
        and out["fingerprint"] == report["fingerprint"]
        and out["header"]["snapshot_version"] == 3
    )
    # Without explicit parameters the build calibrates for the bank's size.
    assert build(4) == 0
    calibrated = json.loads(capsys.readouterr().out)
    # Padded tables hold the rounded count of keys (1024): the calibration is for that many.
    assert (calibrated["tables"], calibrated["bits"]) == (
        calibrate(1024).params.tables,
        calibrate(1024).params.bits,
    )
    assert calibrated["padded"] and calibrated["keys"] == "offline" and calibrated["entry_count"] == 1024
    assert main(["snapshot", "verify", str(snap), "--pubkey", pub]) == 0
    assert json.loads(capsys.readouterr().out)["header"]["snapshot_version"] == 4
    other = AuthorityKey.generate().public_hex
    assert main(["snapshot", "verify", str(snap), "--pubkey", other]) == 2
    assert json.loads(capsys.readouterr().out)["valid"] is False
    assert main(["scan", "--snapshot", str(snap), "--pubkey", pub, "--dihedral", *map(str, samples[:3])]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["verdict"] for r in rows] == ["match", "match", "no_match"]
    assert all(set(r) >= {"path", "hash", "quality", "verdict", "votes"} for r in rows)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    assert main(["scan", "--snapshot", str(snap), "--pubkey", pub, str(samples[0]), str(broken)]) == 2
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["verdict"] for r in rows] == ["match", "error"]
    snap.write_bytes(snap.read_bytes()[:-3])
    assert main(["scan", "--snapshot", str(snap), "--pubkey", pub, str(samples[0])]) == 2
    assert "truncated" in capsys.readouterr().err


def test_cli_build_refuses_weak_offline_privacy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Below the enumeration floor an offline build refuses (one line, exit 2) unless --allow-weak-privacy;
    the build prints the enumeration cost and the mode's privacy in one line."""
    keyfile, bank, snap = tmp_path / "A.key", tmp_path / "bank.sqlite", tmp_path / "snap.bin"
    assert main(["authority", "keygen", "--out", str(keyfile)]) == 0
    samples = sorted((REPO / "samples").glob("*.jpg"))
    assert main(["bank", "import", "--bank", str(bank), str(samples[0])]) == 0
    capsys.readouterr()
    base = ["snapshot", "build", "--bank", str(bank), "--key", str(keyfile), "--out", str(snap)]
    assert main([*base, "--min-enumeration-core-hours", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0] and "core-hours" in err[0]
    assert not snap.exists()
    # the default floor refuses degenerate parameters (an unpadded small bank: 0.002 core-hours) ...
    assert main([*base, "--no-padding"]) == 2
    assert "refused" in capsys.readouterr().err
    # ... and lets the padded default through (0.03 core-hours)
    assert main(base) == 0
    out = capsys.readouterr().out
    privacy = [line for line in out.splitlines() if line.startswith("privacy:")]
    assert len(privacy) == 1 and "offline keys" in privacy[0] and "core-hours" in privacy[0]
    assert main([*base, "--min-enumeration-core-hours", "1", "--allow-weak-privacy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["enumeration_digests"] == report["tables"] * 2 ** report["bits"]
    assert report["enumeration_core_hours"] < 1
    assert main([*base, "--keys", "oprf"]) == 2
    assert "--oprf-key" in capsys.readouterr().err


def test_padding_refuses_parameters_calibrated_for_the_unpadded_count(key: AuthorityKey) -> None:
    """Parameters sized for 2 hashes, padded to 1,024 keys per table, would match any image: refused."""
    hashes = np.random.default_rng(7).integers(0, 256, size=(2, 32), dtype=np.uint8)
    coarse = calibrate(2).params
    with pytest.raises(ValueError, match="too coarse for a padded snapshot"):
        build_snapshot(hashes, params=coarse, key=key, version=1, created=0, expires=10**10, workers=1)
    # the same parameters without padding, and padded-count parameters with padding, build
    assert build_snapshot(hashes, params=coarse, key=key, version=1, created=0, expires=10**10, workers=1,
                          pad=False)
    padded = calibrate_padded(2).params
    data = build_snapshot(hashes, params=padded, key=key, version=1, created=0, expires=10**10, workers=1)
    matcher = Matcher(key.public_key)
    matcher.load(data, now=NOW)
    rng = np.random.default_rng(8)
    strangers = [matcher.match(HashResult("pdq", 256, rng.bytes(32), 80)).outcome for _ in range(50)]
    assert strangers.count("match") == 0
    assert matcher.match(HashResult("pdq", 256, hashes[0].tobytes(), 80)).outcome == "match"
