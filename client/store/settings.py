"""Settings kept in the store (sealed): policy state, snapshot floor, inbox queue, voucher secret, ..."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import cbor2

from client.store.database import Database
from client.store.secrets import SecretTable

__all__ = ["SettingsRepository"]


class SettingsRepository:
    """Named CBOR values, sealed in the ``secrets`` table (kind ``setting``)."""

    def __init__(self, db: Database, secrets: SecretTable) -> None:
        self._db = db
        self._secrets = secrets

    def set(self, name: str, value: Any) -> None:
        """Store a setting (any CBOR-serialisable value: policy, relay url, authority key, ...)."""
        self._secrets.put("setting", name, bytes(cbor2.dumps([name, value])))

    def get(self, name: str, default: Any = None) -> Any:
        """A setting's value, or ``default``."""
        data = self._secrets.get("setting", name)
        return default if data is None else cbor2.loads(data)[1]

    def all(self) -> dict[str, Any]:
        """All settings."""
        return dict(cbor2.loads(data) for data in self._secrets.values("setting"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A store transaction (a read-modify-write of settings commits as one)."""
        with self._db.transaction():
            yield
