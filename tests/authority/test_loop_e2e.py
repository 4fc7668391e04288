"""The authority loop end to end with real processes: a relay and `authority serve` as subprocesses, the
reviewer's `authority review` CLI, and two clients (real :class:`client.core.Core` objects on loopback).

A photo protected on A is accepted; without restarting anything B's JPEG q70 copy is blocked once B's
client installs the pushed snapshot; B appeals, the reviewer accepts, the hash leaves the bank, B's resend
goes through and B sees the decision. Reports under the ``report`` policy reach the queue with votes and
snapshot version; forged and unopenable envelopes are refused and logged; no image bytes exist outside the
two profiles. The decision-to-enforcement times are measured and printed (bounded waits, no timed
assertion); `pocketscan bench rollout` measures them repeatedly.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from client.authority.items import seal_item
from client.authority.store import AuthorityStore
from client.crypto.identity import IdentityKeyPair
from client.demo.world import AuthorityIdentity, make_profile
from client.protect import submit_appeal, submit_protection
from client.report import Report, authority_mailbox, seal_report
from research.bench_rollout import InstallRecorder
from tests.authority.procs import (
    SAMPLES,
    files_containing,
    jpeg_copy,
    pocketscan,
    read_log,
    relay_process,
    serve_process,
    setup_authority,
    until,
)

pytestmark = pytest.mark.slow





def _queue(store: Path) -> list[dict[str, Any]]:
    with AuthorityStore(store) as s:
        return [i.to_json() for i in s.items()]




def test_protect_accept_block_appeal_unblock(tmp_path: Path) -> None:
    authority, key_file, bank, store = setup_authority(tmp_path)
    photo = SAMPLES / "chelsea.jpg"
    copy_q70 = jpeg_copy(photo, tmp_path / "chelsea_q70.jpg")
    figures: dict[str, float] = {}
    with (
        relay_process(tmp_path, authority.public_hex) as relay_url,
        serve_process(tmp_path, key_file, bank, store, relay_url) as (serve, log),
    ):

        async def main() -> None:
            alice = make_profile(tmp_path, "alice", relay=relay_url, authority=authority, policy="report")
            bob = make_profile(tmp_path, "bob", relay=relay_url, authority=authority, policy="block")
            recorder = InstallRecorder(bob)
            installed = recorder.installed
            try:
                await alice.contacts.add(bob.account_id, "bob")
                await bob.contacts.add(alice.account_id, "alice")
                await alice.start()
                await bob.start()
                assert await alice.publish_now() and await bob.publish_now()
                await until(
                    lambda: alice.snapshot.slot.current is not None and bob.snapshot.slot.current is not None,
                    what="the first snapshot published by authority serve",
                )
                first_version = bob.snapshot.slot.current.version  # type: ignore[union-attr]

                before = await bob.sender.send_image(alice.account_id, copy_q70)
                assert before.status == "sent", before  # not banked yet

                # --- A protects the photo; only hashes leave --------------------------------------
                submitted = submit_protection(alice, photo.read_bytes(), name=photo.name)
                queue = await until(
                    lambda: [i for i in _queue(store) if i["kind"] == "submission"],
                    what="the submission in the queue",
                )
                item = queue[0]
                assert item["submission_id"] == submitted.ref and item["sender"] == alice.account_id
                assert (
                    item["hashes"]["pdq"] == submitted.hashes.pdq and len(item["hashes"]["pdq_dihedral"]) == 8
                )
                cli_queue = [
                    json.loads(line)
                    for line in (
                        await asyncio.to_thread(pocketscan, "authority", "queue", "--store", str(store))
                    ).stdout.splitlines()
                ]
                assert {"id", "kind", "received_at"} <= set(cli_queue[0]) and cli_queue[0]["id"] == item["id"]

                # --- the reviewer accepts; B's q70 copy is blocked without restarting anything -------
                review = await asyncio.to_thread(
                    pocketscan,
                    "authority",
                    "review",
                    item["id"],
                    "--accept",
                    "--store",
                    str(store),
                    "--note",
                    "own photo, verified",
                    "--reviewer",
                    "rev1",
                )
                decided_at = json.loads(review.stdout)["decided_at"]
                new_version = await until(
                    lambda: recorder.newer_than(first_version),
                    what="B installing the snapshot with the protected photo",
                )
                blocked = await bob.sender.send_image(alice.account_id, copy_q70)
                blocked_at = time.time()
                assert blocked.status == "blocked", blocked
                assert blocked.scan is not None and blocked.scan.snapshot_version == new_version
                figures["accept_to_installed_s"] = installed[new_version] - decided_at
                figures["accept_to_blocked_send_s"] = blocked_at - decided_at

                with sqlite3.connect(bank) as db:
                    rows = db.execute(
                        "SELECT e.hash, p.source, p.reference FROM entries e JOIN provenance p"
                        " ON p.entry_id = e.id WHERE e.label = 'submission'"
                    ).fetchall()
                assert {r[0] for r in rows} >= {submitted.hashes.pdq, *submitted.hashes.pdq_dihedral}
                assert all(r[1] == "authority-review" and item["id"] in r[2] for r in rows)

                # --- A's report policy: a report reaches the queue with votes and snapshot version ---
                reported = await alice.sender.send_image(bob.account_id, photo)
                assert reported.status in ("reported", "blocked"), reported
                report = (
                    await until(
                        lambda: [i for i in _queue(store) if i["kind"] == "report"],
                        what="the report in the queue",
                    )
                )[0]
                assert report["reporter"] == alice.account_id and report["recipient"] == bob.account_id
                assert report["snapshot_version"] == new_version and report["votes"] >= 1

                # --- B appeals; the reviewer accepts; the hash leaves the bank; B's resend goes through
                appeal = await submit_appeal(
                    bob,
                    copy_q70.read_bytes(),
                    name=copy_q70.name,
                    reason="this is my own cat, not an abusive image",
                )
                item_b = (
                    await until(
                        lambda: [i for i in _queue(store) if i["kind"] == "appeal"],
                        what="the appeal in the queue",
                    )
                )[0]
                assert item_b["appeal_id"] == appeal.ref and item_b["snapshot_version"] == new_version
                assert item_b["blocked"] is True and "own cat" in item_b["reason"]
                assert "attachment" not in item_b and item_b["has_attachment"] is False
                review = await asyncio.to_thread(
                    pocketscan,
                    "authority",
                    "review",
                    item_b["id"],
                    "--accept",
                    "--store",
                    str(store),
                    "--note",
                    "a cat photo, unbanked",
                )
                decided_at = json.loads(review.stdout)["decided_at"]
                unblock_version = await until(
                    lambda: recorder.newer_than(new_version),
                    what="B installing the snapshot without the hash",
                )
                resent = await bob.sender.send_image(alice.account_id, copy_q70)
                sent_at = time.time()
                assert resent.status == "sent", resent
                figures["appeal_accept_to_installed_s"] = installed[unblock_version] - decided_at
                figures["appeal_accept_to_sent_s"] = sent_at - decided_at
                with sqlite3.connect(bank) as db:
                    left = {
                        r[0]
                        for r in db.execute(
                            "SELECT hash FROM entries WHERE label='submission' AND algorithm='pdq'"
                        )
                    }
                    removals = db.execute("SELECT reason FROM removals").fetchall()
                assert submitted.hashes.pdq not in left and not left & set(submitted.hashes.pdq_dihedral)
                assert removals and all(item_b["id"] in r[0] and "unbanked" in r[0] for r in removals)

                # --- both users see the decisions as sealed messages from the authority -------------
                mailbox = authority_mailbox(authority.public_key)
                texts_b = await until(
                    lambda: [m.text for m in bob.messages.conversation(mailbox) if "appeal" in m.text],
                    what="B seeing the appeal decision",
                )
                assert "accepted" in texts_b[0] and "unbanked" in texts_b[0]
                assert f"v{unblock_version}" in texts_b[0]
                texts_a = await until(
                    lambda: [m.text for m in alice.messages.conversation(mailbox)],
                    what="A seeing the submission decision",
                )
                assert "protection request" in texts_a[0] and "accepted" in texts_a[0]

                # --- forged and unopenable envelopes are refused and logged ---------------------------
                mallory = IdentityKeyPair.generate()
                forged_item = seal_item(
                    "submission",
                    {"submission_id": "ab" * 16, "created_at": 1.0, "hashes": {"pdq": "00" * 32}},
                    mallory,
                    authority.public_key,
                )
                forged_report = seal_report(
                    Report(
                        reporter=alice.account_id,
                        recipient=bob.account_id,
                        created_at=1.0,
                        snapshot_fingerprint=None,
                        snapshot_version=None,
                        votes=9,
                        quality=None,
                        pdq_hash=None,
                        image_sha256="00" * 32,
                    ),
                    authority.public_key,
                )
                other_key = seal_item(
                    "submission",
                    {"submission_id": "cd" * 16, "created_at": 1.0, "hashes": {"pdq": "00" * 32}},
                    bob.identity,
                    AuthorityIdentity.generate().public_key,
                )
                for payload in (forged_item, forged_report, other_key, b"PSA1" + os.urandom(200), b"junk"):
                    await bob.net.send_now(mailbox, payload, os.urandom(16))
                with AuthorityStore(store) as s:
                    refused = await until(lambda: len(s.refused()) >= 5 and s.refused(), what="5 refusals")
                    reasons = [r["reason"] for r in refused]
                    assert sum("forged" in r for r in reasons) == 2, reasons
                    assert sum("does not open" in r for r in reasons) == 2, reasons
                    assert all(r["sender"] == bob.account_id for r in refused)
                    assert len([i for i in s.items(status=None)]) == 3  # submission, report, appeal only
                    audit = s.audit_log()
                actions = [a.action for a in audit]
                assert actions.count("item.refused") == 5
                decisions = [a for a in audit if a.action.startswith("decision.")]
                assert [(a.item_id, a.actor, a.why) for a in decisions] == [
                    (item["id"], "rev1", "own photo, verified"),
                    (item_b["id"], os.environ.get("USER") or decisions[1].actor, "a cat photo, unbanked"),
                ]
                assert actions.count("snapshot.published") >= 3 and actions.count("bank.changed") == 2
            finally:
                await alice.stop()
                await bob.stop()

        asyncio.run(main())
        progress = read_log(log)
        assert serve.poll() is None, progress
    for step in ("received submission", "applied: bank", "built and signed", "published", "refused"):
        assert step in progress, progress
    # no image bytes outside the two profiles: relay files (envelopes, blobs), authority store, bank, log
    needles = [
        data[len(data) // 2 : len(data) // 2 + 48] for data in (photo.read_bytes(), copy_q70.read_bytes())
    ]
    assert files_containing(tmp_path / "authority", needles) == []
    assert [
        p
        for p in files_containing(tmp_path, needles)
        if not p.startswith((str(tmp_path / "alice"), str(tmp_path / "bob"))) and p != str(copy_q70)
    ] == []
    # what the authority learned: the appeal links B to A's protected photo and to A's report
    view = json.loads(
        pocketscan(
            "research", "authority-view", "--store", str(store), "--out", str(tmp_path / "view"), "--json"
        ).stdout
    )["data"]
    assert view["items"] == 3 and view["refused"] == 5
    assert {(link["kind_a"], link["kind_b"]) for link in view["links"]} == {
        ("submission", "appeal"),
        ("report", "appeal"),
    }
    assert len(set(view["envelope_sizes"].values())) == len(view["envelope_sizes"])  # kinds differ in size
    print("rollout figures (s):", json.dumps({k: round(v, 3) for k, v in figures.items()}))
    out = os.environ.get("POCKETSCAN_ROLLOUT_JSON")
    if out:
        Path(out).write_text(json.dumps(figures))
