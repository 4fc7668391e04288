"""Failures in seconds: with the relay down, commands answer at once, and queued texts go out later.

Real processes on loopback: `pocketscan` subprocesses and a real `pocketscan relay`. The only time
bound asserted is a generous one on the CLI returning (the measured times are printed; the target,
3 s, is reported, not asserted).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import Relay, free_port, json_lines, pocketscan

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GENEROUS = 30.0  # seconds: far above the 3 s target, far below the old 15-76 s waits


def test_relay_down_text_is_queued_then_delivered(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    rc, out, err, _ = pocketscan("authority", "keygen", "--out", "auth.key", cwd=tmp_path)
    assert rc == 0, err
    auth = out.strip()

    rc, out, err, t_create = pocketscan("account", "create", "--profile", "a", "--relay", url,
                                        "--authority-pubkey", auth, "--no-passphrase", cwd=tmp_path)
    assert rc == 0, err
    created = json_lines(out)[0]
    assert created["published"] is False
    assert "could not reach" in err
    rc, out, err, _ = pocketscan("account", "create", "--profile", "b", "--relay", url,
                                 "--authority-pubkey", auth, "--no-passphrase", cwd=tmp_path)
    assert rc == 0, err
    bob = json_lines(out)[0]["account_id"]
    rc, _, err, _ = pocketscan("contact", "add", "--profile", "a", bob, "--name", "bob", cwd=tmp_path)
    assert rc == 0, err

    rc, out, err, t_text = pocketscan("send", "--profile", "a", "--to", "bob", "--text", "hi", cwd=tmp_path)
    assert rc == 0, err
    queued = json_lines(out)[0]
    assert queued["status"] == "queued" and queued["to"] == bob and queued["id"]
    assert "not reachable" in queued["detail"]

    rc, out, err, t_image = pocketscan("send", "--profile", "a", "--to", "bob", "--image",
                                       str(REPO / "samples" / "coffee.jpg"), cwd=tmp_path)
    assert rc == 2
    refused = json_lines(out)[0]
    assert refused["status"] == "error" and "nothing was queued" in refused["error"]
    print(f"\nrelay down: account create {t_create:.2f} s, send --text {t_text:.2f} s, "
          f"send --image {t_image:.2f} s")
    assert max(t_create, t_text, t_image) < GENEROUS

    relay = Relay(port, tmp_path / "relay.sqlite", "--authority-pubkey", auth)
    try:
        rc, _, err, _ = pocketscan("inbox", "--profile", "b", cwd=tmp_path)  # publishes b's keys
        assert rc == 0, err
        rc, _, err, _ = pocketscan("inbox", "--profile", "a", cwd=tmp_path)  # a's queued text goes out
        assert rc == 0, err
        rc, out, err, _ = pocketscan("inbox", "--profile", "b", "--wait", "20", cwd=tmp_path)
        assert rc == 0, err
        got = json_lines(out)
        assert [(m["type"], m["text"], m["id"]) for m in got] == [("text", "hi", queued["id"])]
        assert got[0]["from"] == created["account_id"]
        # Nothing is sent twice: a second run of a's outbox and b's inbox finds nothing new.
        assert pocketscan("inbox", "--profile", "a", cwd=tmp_path)[0] == 0
        rc, out, _, _ = pocketscan("inbox", "--profile", "b", "--wait", "1", cwd=tmp_path)
        assert rc == 0 and json_lines(out) == []
    finally:
        relay.stop()

    # With a session in place, a text written while the relay is down waits in the encrypted outbox.
    rc, out, err, t_again = pocketscan("send", "--profile", "a", "--to", "bob", "--text", "again",
                                       cwd=tmp_path)
    assert rc == 0, err
    assert json_lines(out)[0]["status"] == "queued"
    assert t_again < GENEROUS
    relay = Relay(port, tmp_path / "relay.sqlite", "--authority-pubkey", auth)
    try:
        assert pocketscan("inbox", "--profile", "a", cwd=tmp_path)[0] == 0
        rc, out, err, _ = pocketscan("inbox", "--profile", "b", "--wait", "20", cwd=tmp_path)
        assert rc == 0, err
        assert [m["text"] for m in json_lines(out)] == ["again"]
    finally:
        relay.stop()
