"""Client settings: one ``Settings`` object, stored as JSON in the profile, env overrides.

Every field can be overridden by an environment variable ``POCKETSCAN_<FIELD>`` (for example
``POCKETSCAN_POLICY=block``); the file is what ``pocketscan config set`` writes. Names may be
written with dashes on the command line (``report-threshold`` is ``report_threshold``).

The file is authenticated: a ``"mac"`` field holds HMAC-SHA256, under a key derived from the
encrypted store's data key, of the settings' canonical JSON. With that key, :func:`load_settings`
refuses a file whose MAC does not match (someone changed the pinned authority key, the relay or the
policy behind pocketscan's back) with :class:`SettingsTampered`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from client.policy import PolicyName, parse_policy
from client.sensitive import MAX_MODEL_NAME, SensitiveSetting, parse_sensitive_setting

__all__ = ["ConfigError", "Settings", "SettingsTampered", "load_settings", "save_settings", "set_setting",
           "setting_name", "settings_mac"]


class ConfigError(ValueError):
    """A settings file or value is invalid; the message names the field."""


class SettingsTampered(ConfigError):
    """The settings file was changed outside pocketscan (its authentication code does not match)."""


_MAC_DOMAIN = b"pocketscan settings v1\x00"


def settings_mac(key: bytes, raw: dict[str, Any]) -> str:
    """Hex HMAC-SHA256 of the settings' canonical JSON (every field but ``mac``) under ``key``."""
    body = json.dumps({k: v for k, v in raw.items() if k != "mac"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, _MAC_DOMAIN + body.encode(), hashlib.sha256).hexdigest()


def _check_mac(path: Path, raw: dict[str, Any], key: bytes, *, require: bool) -> None:
    mac = raw.get("mac")
    if mac is None and not require:
        return
    if not isinstance(mac, str) or not hmac.compare_digest(mac, settings_mac(key, raw)):
        raise SettingsTampered(
            f"{path} was changed outside pocketscan (its authentication code does not match): refusing to "
            "open this profile; restore the file from a backup or create a new profile")


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
    report_threshold: int = 1
    """Under ``report``: matches per key period before the authority can read any (1 = at once)."""
    synthetic_vouchers: float = 0.0
    """Under ``report`` with a threshold above 1: share of non-matching images sending a synthetic voucher."""
    voucher_delay: float = 0.0
    """Under threshold reporting: mean seconds a voucher waits before it leaves (random, exponential)."""
    oprf: str = ""
    """The authority's OPRF service, ``ws://HOST:PORT`` (needed to scan against OPRF-keyed snapshots)."""

    def validate(self) -> Settings:
        if self.relay and not (self.relay.startswith("ws://") or self.relay.startswith("wss://")):
            raise ConfigError(f"relay must be a ws:// or wss:// URL, not {self.relay!r}")
        if self.oprf and not self.oprf.startswith(("ws://", "wss://")):
            raise ConfigError(f"oprf must be a ws:// or wss:// URL, not {self.oprf!r}")
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
        if not 1 <= self.report_threshold <= MAX_REPORT_THRESHOLD:
            raise ConfigError(f"report_threshold must be between 1 and {MAX_REPORT_THRESHOLD}")
        if not 0.0 <= self.synthetic_vouchers <= 1.0:
            raise ConfigError("synthetic_vouchers must be a rate between 0 and 1")
        if not 0.0 <= self.voucher_delay <= 7 * 86_400:
            raise ConfigError("voucher_delay must be between 0 and 604800 seconds (7 days)")
        return self


MAX_REPORT_THRESHOLD = 100
"""Largest report threshold (``client.vouchers.voucher.MAX_THRESHOLD``; Apple's design used 30)."""

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
    if kinds[name] in ("int", "float"):
        number_type = int if kinds[name] == "int" else float
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        try:
            number = number_type(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be {'a whole number' if number_type is int else 'a number'}, "
                              f"not {value!r}") from None
        if isinstance(value, float) and number_type is int and not value.is_integer():
            raise ConfigError(f"{name} must be a whole number, not {value!r}")
        if number_type is float and number != number:
            raise ConfigError(f"{name} must be a number, not {value!r}")
        return number
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


def load_settings(path: Path, *, env: bool = True, key: bytes | None = None,
                  require_mac: bool = True) -> Settings:
    """Read settings from ``path`` (defaults if missing), then apply ``POCKETSCAN_*`` overrides.

    With ``key`` (the store's settings key) the file's MAC is checked first: a wrong or (with
    ``require_mac``) missing MAC raises :class:`SettingsTampered`.
    """
    data: dict[str, Any] = {}
    if path.exists():
        try:
            with path.open("rb") as fh:
                text = fh.read(64 * 1024 + 1)
            if len(text) > 64 * 1024:
                raise ConfigError(f"settings {path} is over 64 KiB")
            raw = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read settings {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"settings {path} must hold a JSON object")
        if key is not None:
            _check_mac(path, raw, key, require=require_mac)
        data = {setting_name(k): _coerce(k, v) for k, v in raw.items() if k != "mac"}
    if env:
        for f in fields(Settings):
            value = os.environ.get(f"POCKETSCAN_{f.name.upper()}")
            if value is not None and f.name not in ("passphrase",):
                data[f.name] = _coerce(f.name, value)
    return Settings(**data).validate()


def save_settings(path: Path, settings: Settings, *, key: bytes | None = None) -> None:
    """Write settings atomically (temp file, then rename), with their MAC when ``key`` is given."""
    settings.validate()
    raw: dict[str, Any] = asdict(settings)
    if key is not None:
        raw["mac"] = settings_mac(key, raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-")
    with os.fdopen(fd, "w") as fh:
        json.dump(raw, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def set_setting(path: Path, name: str, value: str, *, key: bytes | None = None) -> Settings:
    """Change one setting in the file (env overrides are not written); ``key`` checks and renews the MAC."""
    current = load_settings(path, env=False, key=key, require_mac=False)
    updated = replace(current, **{setting_name(name): _coerce(name, value)}).validate()
    save_settings(path, updated, key=key)
    return updated
