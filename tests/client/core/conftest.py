"""Fixtures for the ``client.core`` component tests: two parties over real stores (``partykit``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.core.partykit import Party


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[Party]:
    party = Party(tmp_path / "alice", "alice")
    yield party
    party.close()


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[Party]:
    party = Party(tmp_path / "bob", "bob")
    yield party
    party.close()
