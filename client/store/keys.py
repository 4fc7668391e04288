"""Our own long-term keys in the store: the identity key pair and the prekeys (sealed)."""

from __future__ import annotations

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.store.secrets import SecretTable

__all__ = ["KeyRepository"]


class KeyRepository:
    """This profile's identity key pair and prekeys (private parts included, sealed at rest)."""

    def __init__(self, secrets: SecretTable) -> None:
        self._secrets = secrets

    def save_identity(self, identity: IdentityKeyPair) -> None:
        """Store our identity key pair (there is one per profile)."""
        self._secrets.put("identity", "self", identity.seed)

    def load_identity(self) -> IdentityKeyPair | None:
        """Our identity key pair, or None before account creation."""
        seed = self._secrets.get("identity", "self")
        return None if seed is None else IdentityKeyPair(seed)

    def save_prekeys(self, prekeys: PreKeyState) -> None:
        """Store our prekeys (private parts included, sealed)."""
        self._secrets.put("prekeys", "self", prekeys.to_bytes())

    def load_prekeys(self) -> PreKeyState | None:
        """Our prekeys, or None before account creation."""
        data = self._secrets.get("prekeys", "self")
        return None if data is None else PreKeyState.from_bytes(data)
