"""``client.core.snapshot.SnapshotService`` alone: verify, refuse rollback and swaps, persist the floor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from client.config import Settings
from client.core.snapshot import SnapshotService
from client.demo.world import DEMO_BANKED, AuthorityIdentity, build_snapshot, sample_images
from client.errors import ClientError
from client.interfaces import EventHub, SnapshotChanged
from scanner.errors import SnapshotInvalid
from tests.client.core.partykit import Party


@pytest.fixture(scope="module")
def authority() -> AuthorityIdentity:
    return AuthorityIdentity.generate()


@pytest.fixture(scope="module")
def snapshots(authority: AuthorityIdentity, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    banked = [p for p in sample_images() if p.name in DEMO_BANKED]
    work = tmp_path_factory.mktemp("snap")
    return {"v1": build_snapshot(banked[:1], authority, version=1, work_dir=work),
            "v2": build_snapshot(banked, authority, version=2, work_dir=work),
            "v2b": build_snapshot(banked[:1], authority, version=2, work_dir=work),
            "rogue": build_snapshot(banked, AuthorityIdentity.generate(), version=3, work_dir=work)}


def _service(party: Party, path: Path, settings: Settings) -> tuple[SnapshotService, list[object]]:
    hub, events = EventHub(), list[object]()
    hub.subscribe(events.append)
    shared = replace(party.shared, hub=hub, settings=lambda: settings)
    return SnapshotService(party.store, shared, path, signing_seed=party.identity.seed), events


def test_install_verifies_swaps_and_persists(alice: Party, tmp_path: Path, authority: AuthorityIdentity,
                                             snapshots: dict[str, bytes]) -> None:
    settings = replace(alice.settings, authority_pubkey=authority.public_hex)
    service, events = _service(alice, tmp_path / "snapshot.bin", settings)
    assert service.status().note == "waiting for a snapshot" and service.wants(1)
    service.install(snapshots["v1"])
    assert service.slot.current is not None and service.slot.current.version == 1
    assert (tmp_path / "snapshot.bin").read_bytes() == snapshots["v1"]
    assert [type(e) for e in events] == [SnapshotChanged] and alice.events == ["scanner.snapshot_installed"]
    service.install(snapshots["v2"])
    status = service.status()
    assert (status.version, status.policy) == (2, "block") and not service.wants(2) and service.wants(3)
    with pytest.raises(SnapshotInvalid):
        service.install(snapshots["v1"])  # rollback
    with pytest.raises(SnapshotInvalid):
        service.install(snapshots["v2b"])  # same version, other content
    with pytest.raises(SnapshotInvalid):
        service.install(snapshots["rogue"])  # not the pinned authority
    assert service.slot.current is not None and service.slot.current.version == 2 and service.floor()[0] == 2


def test_saved_snapshot_is_reloaded_and_a_damaged_one_ignored(alice: Party, tmp_path: Path,
                                                              authority: AuthorityIdentity,
                                                              snapshots: dict[str, bytes]) -> None:
    settings = replace(alice.settings, authority_pubkey=authority.public_hex)
    path = tmp_path / "snapshot.bin"
    first, _ = _service(alice, path, settings)
    first.install(snapshots["v2"])
    again, _ = _service(alice, path, settings)
    again.load_saved()
    assert again.slot.current is not None and again.slot.current.version == 2
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    damaged, _ = _service(alice, path, settings)
    damaged.load_saved()
    assert damaged.slot.current is None


def test_without_an_authority_key_nothing_is_installed(alice: Party, tmp_path: Path,
                                                       snapshots: dict[str, bytes]) -> None:
    service, _ = _service(alice, tmp_path / "snapshot.bin", alice.settings)
    with pytest.raises(ClientError, match="no authority key"):
        service.install(snapshots["v1"])
    assert service.status().authority_key_id == "" and not (tmp_path / "snapshot.bin").exists()
