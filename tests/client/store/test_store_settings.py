"""Settings: CBOR values by name, defaults, one transaction for a read-modify-write, sealed at rest."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.store.database import Database
from client.store.secrets import SecretTable
from client.store.settings import SettingsRepository
from client.vouchers.issuer import COUNTER_SETTING, SECRET_SETTING, VoucherIssuer
from scanner.authority import AuthorityKey


@pytest.fixture
def settings(database: Database) -> SettingsRepository:
    return SettingsRepository(database, SecretTable(database))


def test_values_round_trip_with_defaults(settings: SettingsRepository) -> None:
    assert settings.get("policy") is None and settings.get("policy", "warn") == "warn"
    assert settings.all() == {}
    settings.set("policy", "block")
    settings.set("snapshot_floor", [7, "ab" * 16])
    settings.set("pending_keys", {"peer": b"\x01" * 32})
    settings.set("policy", "report")  # replaces
    assert settings.get("policy") == "report"
    assert settings.all() == {"policy": "report", "snapshot_floor": [7, "ab" * 16],
                              "pending_keys": {"peer": b"\x01" * 32}}


def test_names_and_values_are_sealed(settings: SettingsRepository, file_bytes: Callable[[], bytes]) -> None:
    settings.set("relay_url_setting", "ws://relay.example:8765")
    assert b"relay.example" not in file_bytes() and b"relay_url_setting" not in file_bytes()


def test_a_failed_transaction_keeps_the_old_values(settings: SettingsRepository) -> None:
    settings.set("cli_inbox", ["m1"])
    with pytest.raises(RuntimeError), settings.transaction():
        settings.set("cli_inbox", ["m1", "m2"])
        settings.set("other", 1)
        raise RuntimeError("crash between two writes")
    assert settings.get("cli_inbox") == ["m1"] and settings.get("other") is None


def test_the_voucher_issuer_keeps_its_secret_and_counter_here(settings: SettingsRepository) -> None:
    authority = AuthorityKey.generate().public_key
    VoucherIssuer(settings, "a" * 52).seal(None, threshold=3, now=1000.0, authority_key=authority)
    secret = settings.get(SECRET_SETTING)
    assert isinstance(secret, str) and len(secret) == 64 and settings.get(COUNTER_SETTING) == 1
    VoucherIssuer(settings, "a" * 52).seal(None, threshold=3, now=1000.0, authority_key=authority)
    assert settings.get(SECRET_SETTING) == secret  # the same secret for a new issuer (a restart)
    assert settings.get(COUNTER_SETTING) == 2
