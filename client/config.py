"""Client settings: one ``Settings`` object, stored as JSON in the profile, env overrides.

Every field can be overridden by an environment variable ``POCKETSCAN_<FIELD>`` (for example
``POCKETSCAN_POLICY=block``); the file is what ``pocketscan config set`` writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from client.policy import PolicyName, parse_policy
from client.sensitive import MAX_MODEL_NAME, SensitiveSetting, parse_sensitive_setting

__all__ = ["ConfigError", "Settings", "load_settings", "save_settings", "set_setting", "setting_name"]


class ConfigError(ValueError):
    """A settings file or value is invalid; the message names the field."""


@dataclass(frozen=True)
class Settings:
    """Per-profile settings."""

    relay: str = ""
    """Relay URL, ``ws://HOST:PORT``."""
    authority_pubkey: str = ""
    """The bank authority's Ed25519 public key (64 hex): snapshots must be signed by it."""
    policy: PolicyName = "warn"
    """What happens to a matching image: off, warn, block or report."""
    dihedral: bool = True
    """Also match the 8 rotations/flips of each outgoing image."""
    scan_received: bool = False
    """Research setting: scan received images too (the verdict is shown, nothing is blocked)."""
    name: str = ""
    """Display name chosen at onboarding."""
    passphrase: bool = True
    """Whether the store is encrypted under a passphrase (``--no-passphrase`` only for tests/demo)."""
    sensitive_content: SensitiveSetting = "off"
    """On-device sensitive-content classifier: off, warn (confirm before sending), blur (received), both."""
    sensitive_model: str = "nudenet"
    """The classifier: ``nudenet`` (needs ``pocketscan[sensitive]``) or an ``.onnx`` path with its sidecar."""

    def validate(self) -> Settings:
        if self.relay and not (self.relay.startswith("ws://") or self.relay.startswith("wss://")):
            raise ConfigError(f"relay must be a ws:// or wss:// URL, not {self.relay!r}")
        if self.authority_pubkey:
            try:
                key = bytes.fromhex(self.authority_pubkey)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise ConfigError("authority_pubkey must be 64 hex characters (an Ed25519 public key)")
        try:
            parse_policy(self.policy)
            parse_sensitive_setting(self.sensitive_content)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self.sensitive_model or len(self.sensitive_model) > MAX_MODEL_NAME:
            raise ConfigError("sensitive_model must be a classifier name or an .onnx path")
        return self


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


def setting_name(name: str) -> str:
    """``sensitive-content`` and ``sensitive_content`` name the same setting."""
    return name.replace("-", "_")


def _coerce(name: str, value: Any) -> Any:
    name = setting_name(name)
    kinds = {f.name: f.type for f in fields(Settings)}
    if name not in kinds:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(kinds))}")
    if kinds[name] == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in _BOOL:
            return _BOOL[str(value).lower()]
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if name == "policy":
        try:
            return parse_policy(str(value))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if name == "sensitive_content":
        try:
            return parse_sensitive_setting(str(value))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return str(value)


def load_settings(path: Path, *, env: bool = True) -> Settings:
    """Read settings from ``path`` (defaults if missing), then apply ``POCKETSCAN_*`` overrides."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read settings {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"settings {path} must hold a JSON object")
        data = {setting_name(k): _coerce(k, v) for k, v in raw.items()}
    if env:
        for f in fields(Settings):
            value = os.environ.get(f"POCKETSCAN_{f.name.upper()}")
            if value is not None and f.name not in ("passphrase",):
                data[f.name] = _coerce(f.name, value)
    return Settings(**data).validate()


def save_settings(path: Path, settings: Settings) -> None:
    """Write settings atomically (temp file, then rename)."""
    settings.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-")
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(settings), fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def set_setting(path: Path, name: str, value: str) -> Settings:
    """Change one setting in the file (env overrides are not written)."""
    current = load_settings(path, env=False)
    updated = replace(current, **{setting_name(name): _coerce(name, value)}).validate()
    save_settings(path, updated)
    return updated
