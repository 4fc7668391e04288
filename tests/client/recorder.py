"""A recorder standing in for the pipeline's collaborators: it logs the order of operations."""

from __future__ import annotations

from client.crypto.attachments import EncryptedAttachment, encrypt_image
from client.interfaces import MessageView
from client.policy import Decision, PolicyName, ScanOutcome, decide
from scanner.errors import ImageError
from scanner.hashers.base import HashResult
from scanner.verdict import ScanVerdict, issue_verdict


class Recorder:
    """Collaborators that append each call to one shared ``events`` list (magic-wormhole's Dummy)."""

    def __init__(self, outcome: str = "no_match", *, fail_hash: bool = False) -> None:
        self.events: list[str] = []
        self.outcome = outcome
        self.fail_hash = fail_hash
        self.verdicts: list[ScanVerdict] = []
        self.sealed: list[bytes] = []

    # scanner
    def hash(self, data: bytes, *, name: str, dihedral: bool) -> HashResult:
        self.events.append("scanner.hash")
        if self.fail_hash:
            raise ImageError(name, "truncated image data")
        return HashResult("pdq", 256, bytes(32), 90)

    def match(self, hashed: HashResult) -> ScanOutcome:
        self.events.append("scanner.match")
        return ScanOutcome(self.outcome, votes=4 if self.outcome == "match" else 0, min_votes=2,  # type: ignore[arg-type]
                          quality=hashed.quality, snapshot_version=1, snapshot_fingerprint="ff" * 32)

    def error(self, exc: Exception) -> ScanOutcome:
        self.events.append("scanner.error")
        return ScanOutcome("error", reason=str(exc))

    def verdict(self, data: bytes, scan: ScanOutcome) -> ScanVerdict:
        self.events.append("scanner.verdict")
        verdict = issue_verdict(data, scan.outcome, votes=scan.votes)
        self.verdicts.append(verdict)
        return verdict

    # policy
    def decide(self, scan: ScanOutcome, policy: PolicyName) -> Decision:
        self.events.append("policy.decide")
        return decide(scan, policy)

    # crypto seam
    def seal(self, data: bytes, verdict: ScanVerdict, *, content_type: str, width: int | None,
             height: int | None) -> EncryptedAttachment:
        self.events.append("session.encrypt")
        self.sealed.append(data)
        return encrypt_image(data, verdict, content_type=content_type, width=width, height=height)

    # courier
    async def upload_blob(self, blob: bytes) -> str:
        self.events.append("net.upload")
        return "blob1"

    async def deliver_image(self, peer: str, encrypted: EncryptedAttachment, blob_id: str, *, data: bytes,
                            name: str, scan: ScanOutcome) -> MessageView:
        self.events.append("net.send")
        return MessageView("m1", peer, "out", "image", path=name, state="sending")

    async def send_report(self, peer: str, data: bytes, scan: ScanOutcome, hashed: HashResult | None) -> None:
        self.events.append("net.report")
