"""`pocketscan send` honours sensitive-content warn (needs --yes), `inbox` marks images rated for blurring;
real relay on loopback, real stores, the stand-in ONNX model, the seam guard counting encryptions."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

pytest.importorskip("onnx")

from client.demo.world import AuthorityIdentity
from scanner.classifiers.registry import clear_classifier_cache
from tests.client.corekit import background_relay, run_cli
from tests.client.seam import SeamGuard
from tests.scanner.standin_classifier import build_standin_detector, solid_png


def test_cli_send_needs_yes_for_a_sensitive_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = SeamGuard(monkeypatch)
    clear_classifier_cache()
    model = build_standin_detector(tmp_path / "model")
    red = solid_png(tmp_path / "red.png", (255, 0, 0), (80, 60))
    blue = solid_png(tmp_path / "blue.png", (0, 0, 255), (80, 60))
    authority = AuthorityIdentity.generate()
    with background_relay(tmp_path, authority) as relay:
        ids = {}
        for who in ("a", "b"):
            status, out = run_cli("account", "create", "--profile", str(tmp_path / who), "--relay", relay.url,
                                  "--authority-pubkey", authority.public_hex, "--no-passphrase")
            assert status == 0, out
            ids[who] = out[0]["account_id"]
        a, b = str(tmp_path / "a"), str(tmp_path / "b")
        assert run_cli("contact", "add", "--profile", a, ids["b"], "--name", "b")[0] == 0
        assert run_cli("config", "set", "--profile", a, "policy", "off")[0] == 0
        status, out = run_cli("config", "set", "--profile", a, "sensitive-content", "warn")
        assert (status, out) == (0, [{"sensitive-content": "warn"}])
        assert run_cli("config", "set", "--profile", a, "sensitive-model", str(model))[0] == 0
        assert run_cli("config", "set", "--profile", b, "sensitive_content", "blur")[0] == 0
        assert run_cli("config", "set", "--profile", b, "sensitive-model", str(model))[0] == 0
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert run_cli("config", "set", "--profile", b, "sensitive-content", "nonsense")[0] == 2
        assert "off, warn, blur, both" in err.getvalue()
        assert run_cli("inbox", "--profile", b)[0] == 0  # b's keys are at the relay

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status, out = run_cli("send", "--profile", a, "--to", "b", "--image", str(red))
        assert status == 0 and out[0]["status"] == "blocked" and out[0]["needs_confirmation"] is True, out
        assert out[0]["sensitive"]["label"] == "sensitive"
        assert out[0]["sensitive"]["model"] == "standin-detector"
        assert "sensitive-content warn" in out[0]["hint"]
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pocketscan: not sent:") and "--yes" in lines[0]
        assert guard.sealed_count(red.read_bytes()) == 0  # nothing was encrypted

        status, out = run_cli("send", "--profile", a, "--to", "b", "--image", str(blue))
        assert status == 0 and out[0]["status"] == "sent" and out[0]["sensitive"]["label"] == "ok", out
        status, out = run_cli("send", "--profile", a, "--to", "b", "--image", str(red), "--yes")
        assert status == 0 and out[0]["status"] == "sent", out
        assert guard.sealed_count(red.read_bytes()) == 1

        status, out = run_cli("inbox", "--profile", b, "--wait", "5", "--save", str(tmp_path / "saved"))
        assert status == 0 and len(out) == 2, out
        by_bytes = {Path(m["path"]).read_bytes(): m for m in out}
        assert by_bytes[red.read_bytes()].get("sensitive") is True  # stored file untouched, rated sensitive
        assert "sensitive" not in by_bytes[blue.read_bytes()]
