"""A guard on the crypto seam: records every scan verdict issued and every image encryption.

``SeamGuard`` wraps ``client.crypto.attachments._seal`` (the function that actually encrypts
attachment bytes, behind ``encrypt_image``) and fails the test at once if it is ever called for
bytes the scanner did not issue a verdict for.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

import client.crypto.attachments as attachments
import client.scanning as scanning
import scanner.verdict as verdict_mod


class SeamGuard:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.issued: dict[bytes, list[str]] = {}
        self.sealed: list[bytes] = []
        self.violations: list[str] = []
        original_issue = verdict_mod.issue_verdict
        original_seal = attachments._seal

        def issue(data: bytes, outcome: Any, **kw: Any) -> Any:
            self.issued.setdefault(hashlib.sha256(data).digest(), []).append(outcome)
            return original_issue(data, outcome, **kw)

        def seal(data: bytes, *args: Any, **kw: Any) -> Any:
            digest = hashlib.sha256(data).digest()
            if digest not in self.issued:
                self.violations.append(digest.hex()[:16])
                pytest.fail("an image was encrypted without a scan verdict for its exact bytes")
            self.sealed.append(digest)
            return original_seal(data, *args, **kw)

        # client.scanning seals through scanner.verdict.seal_outcome, which calls this module-level name.
        monkeypatch.setattr(verdict_mod, "issue_verdict", issue)
        assert scanning.seal_outcome is verdict_mod.seal_outcome
        monkeypatch.setattr(attachments, "_seal", seal)

    def sealed_count(self, data: bytes) -> int:
        return self.sealed.count(hashlib.sha256(data).digest())

    def outcomes(self, data: bytes) -> list[str]:
        return self.issued.get(hashlib.sha256(data).digest(), [])
