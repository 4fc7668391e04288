"""Sensitive-content warnings: the exact outgoing bytes are rated before encryption (stand-in ONNX model),
the rating is sealed into the verdict, it never blocks or reports; received images are rated for blurring."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")

from client.config import ConfigError, load_settings, set_setting
from client.image_pipeline import ImagePipeline, send_image
from client.policy import PolicyName
from client.sensitive import LocalClassifier, SensitiveResult, parse_sensitive_setting
from scanner.classifiers.registry import clear_classifier_cache
from scanner.verdict import VerdictMismatch, issue_verdict, with_classification
from tests.client.recorder import Recorder
from tests.scanner.standin_classifier import build_standin_detector, solid_png


class RecordingClassifier:
    """The real on-device classifier (stand-in model), recording each call in the pipeline's event list."""

    def __init__(self, rec: Recorder, model: Path) -> None:
        self.rec = rec
        self.inner = LocalClassifier(str(model))
        self.rated: list[bytes] = []

    def classify(self, data: bytes, *, name: str) -> SensitiveResult:
        self.rec.events.append("classifier.classify")
        self.rated.append(data)
        return self.inner.classify(data, name=name)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    clear_classifier_cache()
    return build_standin_detector(tmp_path / "model")


def _send(rec: Recorder, model: Path, image: Path, *, policy: PolicyName = "block", setting: str = "warn",
          **kw: Any) -> tuple[Any, RecordingClassifier]:
    clf = RecordingClassifier(rec, model)
    pipe = ImagePipeline(scanner=rec, seal=rec.seal, courier=rec, policy=lambda: policy,  # type: ignore[arg-type]
                         dihedral=lambda: True, decide=rec.decide, classifier=clf,
                         sensitive_content=lambda: setting)
    return asyncio.run(send_image(pipe, "peer", image, **kw)), clf


def test_warn_rates_exact_bytes_before_encryption_and_asks(model: Path, tmp_path: Path) -> None:
    red = solid_png(tmp_path / "red.png", (255, 0, 0))
    rec = Recorder("no_match")
    out, clf = _send(rec, model, red)
    assert out.status == "confirm" and out.decision.action == "confirm"
    assert out.sensitive.label == "sensitive" and out.sensitive.model == "standin-detector"
    assert "possibly sensitive" in out.decision.explanation
    assert out.decision.explanation.endswith("send anyway?")
    assert rec.events == ["scanner.hash", "scanner.match", "policy.decide", "scanner.verdict",
                          "classifier.classify"]
    assert clf.rated == [red.read_bytes()]  # the exact bytes, nothing sent

    rec = Recorder("no_match")
    out, _ = _send(rec, model, red, confirmed=True)
    assert out.status == "sent" and "sent after the sender confirmed" in out.decision.explanation
    assert rec.events.index("classifier.classify") < rec.events.index("session.encrypt")
    assert rec.sealed == [red.read_bytes()]


def test_rating_is_sealed_into_the_verdict_the_seam_checks(model: Path, tmp_path: Path) -> None:
    blue = solid_png(tmp_path / "blue.png", (0, 0, 255))
    rec = Recorder("no_match")
    seen: list[Any] = []
    original = rec.seal

    def seal(data: bytes, verdict: Any, **kw: Any) -> Any:
        seen.append(verdict)
        return original(data, verdict, **kw)

    rec.seal = seal  # type: ignore[method-assign]
    out, _ = _send(rec, model, blue)
    assert out.status == "sent" and out.sensitive.label == "ok"  # not sensitive: no question asked
    verdict = seen[0]
    assert (verdict.sensitive, verdict.sensitive_model) == ("ok", "standin-detector")
    assert verdict.is_bound_to(blue.read_bytes())
    # a forged rating breaks the seal
    assert not replace(verdict, sensitive="sensitive").is_bound_to(blue.read_bytes())


def test_with_classification_refuses_other_bytes() -> None:
    verdict = issue_verdict(b"abc", "no_match")
    with pytest.raises(VerdictMismatch):
        with_classification(verdict, b"abd", label="ok", score=0.1, model="m")
    with pytest.raises(ValueError, match="unknown classifier label"):
        with_classification(verdict, b"abc", label="maybe", score=0.1, model="m")
    sealed = with_classification(verdict, b"abc", label="sensitive", score=0.9, model="m")
    assert sealed.is_bound_to(b"abc") and sealed.outcome == "no_match"


@pytest.mark.parametrize("setting", ["off", "blur"])
def test_no_rating_on_send_unless_warn(model: Path, tmp_path: Path, setting: str) -> None:
    rec = Recorder("no_match")
    out, clf = _send(rec, model, solid_png(tmp_path / "red.png", (255, 0, 0)), setting=setting)
    assert out.status == "sent" and out.sensitive is None and clf.rated == []


def test_never_changes_a_hash_block_or_report(model: Path, tmp_path: Path) -> None:
    red = solid_png(tmp_path / "red.png", (255, 0, 0))
    for policy, status in (("block", "blocked"), ("report", "reported")):
        rec = Recorder("match")
        out, clf = _send(rec, model, red, policy=policy, setting="both")  # type: ignore[arg-type]
        assert out.status == status and clf.rated == []
    # a blue (ok) image under hash policy "off" is sent unasked; the red one asks even with hashing off
    rec = Recorder("no_match")
    assert _send(rec, model, solid_png(tmp_path / "b.png", (0, 0, 255)), policy="off")[0].status == "sent"
    rec = Recorder("no_match")
    assert _send(rec, model, red, policy="off")[0].status == "confirm"


def test_hash_warning_and_sensitive_warning_are_one_question(model: Path, tmp_path: Path) -> None:
    rec = Recorder("match")
    out, _ = _send(rec, model, solid_png(tmp_path / "red.png", (255, 0, 0)), policy="warn")
    assert out.status == "confirm"
    assert "matches the hash bank" in out.decision.explanation
    assert "possibly sensitive" in out.decision.explanation


def test_unavailable_classifier_never_blocks(tmp_path: Path) -> None:
    rec = Recorder("no_match")
    out, _ = _send(rec, tmp_path / "missing.onnx", solid_png(tmp_path / "red.png", (255, 0, 0)))
    assert out.status == "sent"
    assert out.sensitive.label is None and "not found" in out.sensitive.reason


def test_undecodable_image_gets_a_reason_not_a_crash(model: Path, tmp_path: Path) -> None:
    result = LocalClassifier(str(model)).classify(b"\x89PNG\r\n\x1a\n broken", name="x.png")
    assert result.label is None and result.reason


def test_setting_parsing_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_sensitive_setting(" Both ") == "both"
    with pytest.raises(ValueError, match="off, warn, blur, both"):
        parse_sensitive_setting("loud")
    path = tmp_path / "settings.json"
    assert load_settings(path, env=False).sensitive_content == "off"  # default
    assert set_setting(path, "sensitive-content", "warn").sensitive_content == "warn"
    assert set_setting(path, "sensitive_model", "/models/x.onnx").sensitive_model == "/models/x.onnx"
    with pytest.raises(ConfigError, match="sensitive-content"):
        set_setting(path, "sensitive-content", "report")
    assert load_settings(path, env=False).sensitive_content == "warn"  # a refused change leaves the file
    monkeypatch.setenv("POCKETSCAN_SENSITIVE_CONTENT", "blur")
    assert load_settings(path).sensitive_content == "blur"


@pytest.mark.parametrize("raw", [None, "sensitive", {"label": "nude"}, {"label": "sensitive", "score": 7},
                                 {"label": "sensitive", "score": True}, ["sensitive"]])
def test_stored_ratings_are_read_defensively(raw: object) -> None:
    assert SensitiveResult.from_dict(raw) is None


def test_stored_rating_round_trip() -> None:
    r = SensitiveResult("sensitive", 0.91234567, "nudenet-320n")
    back = SensitiveResult.from_dict(r.as_dict())
    assert back is not None and back.flagged and back.score == pytest.approx(0.9123)


def test_core_end_to_end_warn_then_blur(tmp_path: Path, model: Path) -> None:
    """Real relay, real stores: alice (warn) must confirm; bob (blur) gets it rated sensitive, file intact."""
    from client.interfaces import MessageReceived
    from tests.client.corekit import run, until

    red = solid_png(tmp_path / "red.png", (255, 0, 0), (96, 64))

    async def body(p: Any) -> None:
        for core, setting in ((p.alice, "warn"), (p.bob, "blur")):
            core.settings = replace(core.settings, sensitive_content=setting, sensitive_model=str(model))
        first = await p.alice.sender.send_image(p.bob.account_id, red)
        assert first.status == "confirm" and first.sensitive.flagged
        out = await p.alice.sender.send_image(p.bob.account_id, red, confirmed=True)
        assert out.status == "sent", out
        await until(lambda: any(isinstance(e, MessageReceived) for e in p.events["bob"]))
        got = next(e for e in p.events["bob"] if isinstance(e, MessageReceived)).message
        assert got.sensitive and got.path
        stored = hashlib.sha256(p.bob.messages.image_bytes(got.id) or b"").digest()  # sealed at rest
        assert stored == hashlib.sha256(red.read_bytes()).digest()
        assert p.bob.messages.get(got.id).sensitive  # read back from the encrypted store
        assert p.bob.describe()["sensitive_content"] == "blur"

    run(tmp_path / "pair", body, policy="off")
