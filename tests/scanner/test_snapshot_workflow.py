"""The authority workflow's steps alone (scanner/snapshot/workflow.py): a real bank imported from a folder of
generated images, real Ed25519 keys, real snapshot files, publishers that record or fail."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.authority import AuthorityKey
from scanner.bank import HashBank
from scanner.bank_import import collect_entries
from scanner.calibration import calibrate, calibrate_padded, rounded_entry_count
from scanner.errors import CalibrationError
from scanner.hashers.base import HashResult
from scanner.hashing import hash_file
from scanner.matcher import Matcher
from scanner.snapshot import verify_snapshot
from scanner.snapshot.workflow import (
    ExplicitLsh,
    Published,
    SnapshotPlan,
    WeakPrivacyError,
    build_signed,
    calibrate_for,
    dedupe,
    load_bank,
    make_snapshot,
    privacy_cost,
    publish,
    seed_bank,
    write_snapshot,
)

NOW = 1_800_000_000
BANKED = 5


@pytest.fixture
def image_folder(tmp_path: Path, make_image: Callable[..., np.ndarray]) -> Path:
    """Five distinct banked images, a byte-identical copy of the first, and a flat image below the gate."""
    folder = tmp_path / "bank-images"
    folder.mkdir()
    for i in range(BANKED):
        Image.fromarray(make_image("blocks", 160, 160, seed=i)).save(folder / f"img{i}.png")
    shutil.copy(folder / "img0.png", folder / "img0-again.png")
    Image.fromarray(make_image("flat", 96, 96)).save(folder / "flat.png")
    return folder


@pytest.fixture
def bank(tmp_path: Path, image_folder: Path) -> Path:
    path = tmp_path / "bank.sqlite"
    with HashBank(path) as b:
        report = b.add(collect_entries([image_folder]), now=NOW)
    assert report.duplicates == 1  # the copy
    return path


@pytest.fixture
def key() -> AuthorityKey:
    return AuthorityKey(os.urandom(32))


def _hash_of(path: Path) -> bytes:
    return hash_file(path, algo="pdq", mode="exact").hash


def _entries(bank: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    with HashBank(bank, create=False) as b:
        return [(e.algorithm, e.hash, e.sources) for e in b.entries()]


def test_load_bank_gives_each_gated_hash_once(bank: Path, image_folder: Path) -> None:
    hashes = load_bank(bank, SnapshotPlan(), now=NOW)
    assert len(hashes) == BANKED and len(set(hashes)) == BANKED
    assert set(hashes) == {_hash_of(image_folder / f"img{i}.png") for i in range(BANKED)}
    assert _hash_of(image_folder / "flat.png") not in hashes  # below PDQ's quality gate
    assert load_bank(bank, SnapshotPlan(min_sources=2), now=NOW) == []  # one source each
    a, b = b"\x01" * 32, b"\x02" * 32
    assert dedupe([a, b, a, bytearray(b)]) == [a, b]


def test_seed_bank_starts_fresh_and_dedupes(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    a, b = os.urandom(32), os.urandom(32)
    assert seed_bank(path, "pdq", [a], [100], source="first", now=NOW).added == 1
    report = seed_bank(path, "pdq", [b, b, a], [100, 100, 20], source="second", now=NOW)
    assert (report.added, report.duplicates) == (2, 1)
    assert load_bank(path, SnapshotPlan(), now=NOW) == [b]  # the old bank is gone; a is below the gate


def test_calibration_is_for_the_padded_entry_count(bank: Path) -> None:
    hashes = load_bank(bank, SnapshotPlan(), now=NOW)
    padded = calibrate_for(hashes, SnapshotPlan())
    assert padded.sized_for == rounded_entry_count(BANKED) == 1024
    assert padded.params == calibrate_padded(BANKED).params
    assert padded.params != calibrate(BANKED).params  # the real count would give too coarse keys
    unpadded = calibrate_for(hashes, SnapshotPlan(pad=False))
    assert unpadded.sized_for == BANKED and unpadded.params == calibrate(BANKED).params


def test_coarse_parameters_are_refused_for_a_padded_build(bank: Path, key: AuthorityKey) -> None:
    hashes = load_bank(bank, SnapshotPlan(), now=NOW)
    coarse = ExplicitLsh(tables=12, bits=10, min_votes=2)
    for pad in (True, False):
        plan = SnapshotPlan(lsh=coarse, pad=pad)
        sizing = calibrate_for(hashes, plan)
        privacy = privacy_cost(sizing.params, plan)
        if pad:
            with pytest.raises(CalibrationError, match="too coarse for a padded snapshot"):
                build_signed(hashes, sizing, key, plan, now=NOW, privacy=privacy)
        else:
            built = build_signed(hashes, sizing, key, plan, now=NOW, privacy=privacy)
            assert verify_snapshot(built.data, key.public_key).header.tables == 12
    with pytest.raises(CalibrationError):
        calibrate_for(hashes, SnapshotPlan(lsh=ExplicitLsh(tables=4, bits=10, min_votes=5)))


def test_privacy_floor_refuses_weak_offline_snapshots(bank: Path) -> None:
    hashes = load_bank(bank, SnapshotPlan(), now=NOW)
    plan = SnapshotPlan(min_enumeration_core_hours=1e12)
    sizing = calibrate_for(hashes, plan)
    with pytest.raises(WeakPrivacyError) as refused:
        privacy_cost(sizing.params, plan)
    assert refused.value.floor == 1e12 and refused.value.cost.core_hours < 1e12
    assert privacy_cost(sizing.params, SnapshotPlan()).keys == "offline"  # no floor: no refusal


def test_make_and_write_a_snapshot_devices_accept(
    bank: Path, image_folder: Path, key: AuthorityKey, tmp_path: Path
) -> None:
    snapshot = make_snapshot(bank, key, SnapshotPlan(version=7), now=NOW)
    assert (snapshot.version, snapshot.created, snapshot.entries, snapshot.padded) == (7, NOW, BANKED, True)
    assert snapshot.expires == NOW + 30 * 86400
    header = verify_snapshot(snapshot.data, key.public_key).header
    assert header.snapshot_version == 7 and header.entry_count == 1024
    assert (header.tables, header.bits, header.min_votes) == (
        snapshot.params.tables, snapshot.params.bits, snapshot.params.min_votes)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    path = write_snapshot(out_dir / "snap.bin", snapshot)
    assert path.read_bytes() == snapshot.data and os.listdir(out_dir) == ["snap.bin"]  # no temporary left
    matcher = Matcher(key.public_key)
    matcher.load(path.read_bytes(), now=NOW)

    def matched(image: Path) -> bool:
        h = hash_file(image, algo="pdq", mode="exact", dihedral=True)
        return bool(matcher.match(HashResult("pdq", 256, h.hash, 100, h.dihedral)).matched)

    assert matched(image_folder / "img3.png")
    other = tmp_path / "other.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(other)
    assert not matched(other)


class _Recorder:
    def __init__(self) -> None:
        self.uploads: list[tuple[bytes, int]] = []

    async def publish(self, data: bytes, version: int) -> int:
        self.uploads.append((data, version))
        return version


class _Unreachable:
    async def publish(self, data: bytes, version: int) -> int:
        raise ConnectionRefusedError("relay down")


def test_failed_publish_leaves_the_written_snapshot_and_the_bank_intact(
    bank: Path, key: AuthorityKey, tmp_path: Path
) -> None:
    snapshot = make_snapshot(bank, key, SnapshotPlan(version=3), now=NOW)
    path = write_snapshot(tmp_path / "snap.bin", snapshot)
    before = _entries(bank)
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(publish(snapshot, _Unreachable()))
    assert path.read_bytes() == snapshot.data
    assert verify_snapshot(path.read_bytes(), key.public_key).header.snapshot_version == 3
    assert _entries(bank) == before and len(before) == BANKED + 1  # the flat image is stored, gated out
    recorder = _Recorder()  # the retry publishes the same bytes
    published = asyncio.run(publish(snapshot, recorder))
    assert isinstance(published, Published) and published.version == 3
    assert recorder.uploads == [(snapshot.data, 3)]
