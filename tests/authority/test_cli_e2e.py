"""The user's commands as real processes: `protect` (consent, JSON lines), `appeal --attach-image`, `inbox`
showing the authority's decision, and `authority attachment` for the reviewer; relay and `authority serve`
run as subprocesses too."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from client.authority.store import AuthorityStore
from tests.authority.procs import (
    SAMPLES,
    files_containing,
    jpeg_copy,
    pocketscan,
    relay_process,
    serve_process,
    wait_for,
)
from tests.authority.test_loop_e2e import setup_authority

pytestmark = pytest.mark.slow


def _lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _published(store: Path) -> bool:
    with AuthorityStore(store) as s:
        return s.published_generation() == s.bank_generation() and not s.unapplied()


def test_protect_appeal_with_attached_image_and_inbox(tmp_path: Path) -> None:
    authority, key_file, bank, store = setup_authority(tmp_path)
    photo = SAMPLES / "chelsea.jpg"
    copy_q70 = jpeg_copy(photo, tmp_path / "chelsea_q70.jpg")
    alice, bob = str(tmp_path / "alice"), str(tmp_path / "bob")
    with (
        relay_process(tmp_path, authority.public_hex) as relay,
        serve_process(tmp_path, key_file, bank, store, relay),
    ):
        ids = {}
        for name, profile in (("alice", alice), ("bob", bob)):
            created = pocketscan(
                "account",
                "create",
                "--profile",
                profile,
                "--relay",
                relay,
                "--authority-pubkey",
                authority.public_hex,
                "--no-passphrase",
                "--policy",
                "block",
                "--name",
                name,
            )
            ids[name] = json.loads(created.stdout)["account_id"]
        pocketscan("contact", "add", "--profile", bob, ids["alice"], "--name", "alice")

        # no consent (stdin is not a terminal, no --yes): nothing leaves
        refused = pocketscan("protect", "--profile", alice, str(photo), check=False)
        assert refused.returncode == 2 and "PDQ" in refused.stderr
        assert [r["status"] for r in _lines(refused)] == ["error"]
        protected = pocketscan(
            "protect", "--profile", alice, str(photo), str(tmp_path / "missing.jpg"), "--yes", check=False
        )
        assert protected.returncode == 2
        ok, missing = sorted(_lines(protected), key=lambda r: r["status"] != "submitted")
        assert ok["status"] == "submitted" and missing["status"] == "error"
        assert set(ok) >= {"path", "status", "submission_id", "hashes"} and len(ok["hashes"]["pdq"]) == 64  # type: ignore[arg-type]
        queue = wait_for(
            lambda: _lines(pocketscan("authority", "queue", "--store", str(store))),
            timeout=30,
            what="the submission in the queue",
        )
        assert [q["kind"] for q in queue] == ["submission"] and queue[0]["submission_id"] == ok[
            "submission_id"
        ]
        pocketscan("authority", "review", str(queue[0]["id"]), "--accept", "--store", str(store))
        wait_for(lambda: _published(store), timeout=30, what="the new snapshot published")
        pocketscan("inbox", "--profile", bob)  # connects: installs and saves the newest snapshot
        blocked = json.loads(
            pocketscan("send", "--profile", bob, "--to", "alice", "--image", str(copy_q70)).stdout
        )
        assert blocked["status"] == "blocked", blocked

        appealed = pocketscan(
            "appeal", "--profile", bob, "--image", str(copy_q70), "--reason", "my own cat", "--attach-image"
        )
        result = json.loads(appealed.stdout)
        assert result["status"] == "appealed" and result["blocked"] is True and len(result["appeal_id"]) == 32
        appeal = wait_for(
            lambda: [
                q
                for q in _lines(pocketscan("authority", "queue", "--store", str(store)))
                if q["kind"] == "appeal"
            ],
            timeout=30,
            what="the appeal in the queue",
        )[0]
        assert (
            appeal["appeal_id"] == result["appeal_id"]
            and appeal["attachment"]["status"] == "stored encrypted"
        )
        out = tmp_path / "authority" / "reviewed.jpg"
        pocketscan(
            "authority",
            "attachment",
            str(appeal["id"]),
            "--store",
            str(store),
            "--key",
            str(key_file),
            "--out",
            str(out),
        )
        assert out.read_bytes() == copy_q70.read_bytes() and stat.S_IMODE(out.stat().st_mode) == 0o600
        out.unlink()
        # encrypted at rest and in transit: no plaintext image bytes in the store, the relay or the bank
        data = copy_q70.read_bytes()
        needles = [data[i : i + 48] for i in (len(data) // 4, len(data) // 2)]
        assert files_containing(tmp_path / "authority", needles) == []
        assert [p for p in files_containing(tmp_path, needles) if "relay" in Path(p).name] == []

        pocketscan(
            "authority", "review", str(appeal["id"]), "--accept", "--store", str(store), "--note", "benign"
        )
        wait_for(lambda: _published(store), timeout=30, what="the snapshot without the hash published")
        inbox = _lines(pocketscan("inbox", "--profile", bob, "--wait", "10"))
        decisions = [m for m in inbox if "appeal" in str(m.get("text", ""))]
        assert decisions and "accepted" in str(decisions[0]["text"]) and "benign" in str(decisions[0]["text"])
        sent = json.loads(
            pocketscan("send", "--profile", bob, "--to", "alice", "--image", str(copy_q70)).stdout
        )
        assert sent["status"] == "sent", sent
        inbox_a = _lines(pocketscan("inbox", "--profile", alice, "--wait", "10"))
        assert any("protection request" in str(m.get("text", "")) for m in inbox_a), inbox_a
