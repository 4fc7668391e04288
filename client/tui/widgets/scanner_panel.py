"""The scanner panel: which snapshot decides, how old it is, and what the policy does."""

from __future__ import annotations

import time

from textual.widgets import Static

from client.interfaces import ScannerStatus

__all__ = ["ScannerPanel", "format_age"]


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    if seconds < 172800:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


class ScannerPanel(Static):
    """Snapshot version, fingerprint, age, policy, authority key id."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Scanner"
        self.status: ScannerStatus | None = None

    def show(self, status: ScannerStatus, *, now: float | None = None) -> None:
        self.status = status
        now = time.time() if now is None else now
        if status.version is None:
            snap = "snapshot: none yet"
            fp = ""
            age = ""
        else:
            snap = f"snapshot: v{status.version}"
            fp = f"\nfp: {(status.fingerprint or '')[:16]}"
            age = f"\nage: {format_age(status.age_seconds(now))}"
        key = f"\nkey: {status.authority_key_id[:16] or '—'}"
        dihedral = "on" if status.dihedral else "off"
        note = f"\n{status.note}" if status.note else ""
        self.set_class(status.policy == "off", "policy-off")
        self.update(f"policy: [b]{status.policy}[/b]\n{snap}{fp}{age}{key}\ndihedral: {dihedral}{note}")
