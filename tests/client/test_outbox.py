"""The outgoing-image pipeline wired to recorders: exact order of steps, and what each policy lets out."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from client.image_pipeline import ImagePipeline, SendError, read_image_file, send_image
from client.policy import PolicyName
from tests.client.recorder import Recorder

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "coffee.jpg"




def _pipe(rec: Recorder, policy: PolicyName) -> ImagePipeline:
    return ImagePipeline(scanner=rec, seal=rec.seal, courier=rec, policy=lambda: policy,  # type: ignore[arg-type]
                         dihedral=lambda: True, decide=rec.decide)


def run(rec: Recorder, policy: PolicyName, **kw: Any) -> Any:
    return asyncio.run(send_image(_pipe(rec, policy), "peer", SAMPLE, **kw))


def test_allowed_image_order() -> None:
    rec = Recorder("no_match")
    out = run(rec, "block")
    assert rec.events == ["scanner.hash", "scanner.match", "policy.decide", "scanner.verdict",
                          "session.encrypt", "net.upload", "net.send"]
    assert out.status == "sent" and out.scan.outcome == "no_match"
    # the encrypted bytes are exactly the file's bytes, and the verdict is bound to them
    assert rec.sealed == [SAMPLE.read_bytes()]
    assert rec.verdicts[0].content_digest == hashlib.sha256(SAMPLE.read_bytes()).digest()


def test_block_leaves_nothing() -> None:
    rec = Recorder("match")
    out = run(rec, "block")
    assert rec.events == ["scanner.hash", "scanner.match", "policy.decide", "scanner.verdict"]
    assert out.status == "blocked" and out.decision.action == "block" and out.scan.votes == 4


def test_report_sends_only_the_report() -> None:
    rec = Recorder("match")
    out = run(rec, "report")
    assert rec.events[-1] == "net.report"
    assert "session.encrypt" not in rec.events and "net.send" not in rec.events
    assert out.status == "reported"


def test_warn_asks_then_sends_when_confirmed() -> None:
    rec = Recorder("match")
    assert run(rec, "warn").status == "confirm"
    assert "session.encrypt" not in rec.events
    rec2 = Recorder("match")
    out = run(rec2, "warn", confirmed=True)
    assert out.status == "sent" and rec2.events[-3:] == ["session.encrypt", "net.upload", "net.send"]
    assert rec2.events.index("scanner.hash") < rec2.events.index("session.encrypt")


def test_off_does_not_scan_but_still_seals_a_verdict() -> None:
    rec = Recorder("match")
    out = run(rec, "off")
    assert "scanner.hash" not in rec.events and out.status == "sent"
    assert out.scan.outcome == "skipped" and rec.verdicts[0].outcome == "skipped"


@pytest.mark.parametrize(("policy", "status"), [("off", "sent"), ("warn", "confirm"), ("block", "blocked"),
                                                ("report", "blocked")])
def test_unscannable_rule(policy: PolicyName, status: str) -> None:
    rec = Recorder(fail_hash=True)
    out = run(rec, policy)
    assert out.status == status
    if policy != "off":
        assert out.scan.outcome == "error" and "truncated" in out.scan.reason


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(SendError, match="no such file"):
        read_image_file(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(SendError, match="empty"):
        read_image_file(tmp_path / "empty.jpg")
    with pytest.raises(SendError, match="folder"):
        read_image_file(tmp_path)
