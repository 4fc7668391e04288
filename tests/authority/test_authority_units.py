"""The authority's parts without a network: sealed items and notices, the store and its audit log, the inbox's
refusals, the workflow's bank changes and snapshots, and the CLI's one-line errors (exit 2)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.authority.inbox import Inbox
from client.authority.items import ItemError, Notice, open_item, open_notice, seal_item, seal_notice
from client.authority.store import AuthorityStore, ItemAlreadyDecided, StoreError, StoreLocked, UnknownItem
from client.authority.workflow import Workflow
from client.cli.main import main
from client.crypto.identity import IdentityKeyPair
from client.report import Report, seal_report
from scanner.authority import AuthorityKey
from scanner.bank import HashBank, NewEntry
from scanner.snapshot.reader import verify_snapshot

PDQ = "5a" * 32


def _flip(hex_hash: str, bits: int) -> str:
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):064x}"


def _submission(ref: str = "ab" * 16, pdq: str = PDQ) -> dict[str, object]:
    return {
        "submission_id": ref,
        "created_at": 1.0,
        "quality": 90,
        "hashes": {"pdq": pdq, "pdq_dihedral": [pdq, _flip(pdq, 3)], "onnx": "11" * 32},
    }


@pytest.fixture()
def authority() -> AuthorityKey:
    return AuthorityKey.generate()


def test_items_open_only_with_the_authority_key_and_carry_the_signer(authority: AuthorityKey) -> None:
    alice = IdentityKeyPair.generate()
    env = seal_item("submission", _submission(), alice, authority.public_key)
    opened = open_item(env, authority.seed)
    assert opened.kind == "submission" and opened.sender == alice.account_id and opened.body["quality"] == 90
    with pytest.raises(ItemError, match="does not open"):
        open_item(env, AuthorityKey.generate().seed)
    tampered = bytearray(env)
    tampered[-5] ^= 1
    with pytest.raises(ItemError):
        open_item(bytes(tampered), authority.seed)
    with pytest.raises(ItemError, match="not a pocketscan"):
        open_item(b"XXXX" + env[4:], authority.seed)


def test_notices_verify_against_the_pinned_authority(authority: AuthorityKey) -> None:
    bob = IdentityKeyPair.generate()
    notice = Notice("cd" * 16, "appeal", "accepted", "a cat", 5.0, 7)
    env = seal_notice(notice, authority.seed, bob.public)
    assert open_notice(env, bob, authority.public_key) == notice
    assert "accepted" in notice.describe() and "v7" in notice.describe()
    with pytest.raises(ItemError):
        open_notice(env, bob, AuthorityKey.generate().public_key)
    with pytest.raises(ItemError):
        open_notice(env, IdentityKeyPair.generate(), authority.public_key)
    forged = seal_notice(notice, AuthorityKey.generate().seed, bob.public)
    with pytest.raises(ItemError):
        open_notice(forged, bob, authority.public_key)


def test_store_audit_log_is_append_only_and_decisions_are_final(tmp_path: Path) -> None:
    with AuthorityStore(tmp_path / "s.sqlite", create=True) as store:
        item_id = store.add_item(
            kind="submission",
            sender="a" * 32,
            sender_key=None,
            relay_mid="m1",
            ref="ab" * 16,
            body={"x": 1},
            received_at=1.0,
        )
        assert item_id is not None
        assert (
            store.add_item(
                kind="submission",
                sender="a" * 32,
                sender_key=None,
                relay_mid="m2",
                ref="ab" * 16,
                body={"x": 1},
                received_at=2.0,
            )
            is None
        )  # same ref: duplicate
        with pytest.raises(UnknownItem):
            store.decide("s-000000000000", accept=True, reviewer="r")
        decision = store.decide(item_id, accept=False, note="not yours", reviewer="r")
        assert decision.decision == "rejected" and store.unapplied() == [decision]
        with pytest.raises(ItemAlreadyDecided):
            store.decide(item_id, accept=True, reviewer="r")
        store.bind_key("aa" * 32)
        with pytest.raises(StoreError, match="wrong --key"):
            store.bind_key("bb" * 32)
        store.lock_exclusive()
        with AuthorityStore(tmp_path / "s.sqlite") as other, pytest.raises(StoreLocked):
            other.lock_exclusive()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET why='x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
        actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY seq")]
    assert actions == ["item.received", "item.duplicate", "decision.rejected", "store.bound"]


def test_inbox_refuses_forged_unopenable_and_malformed_items(tmp_path: Path, authority: AuthorityKey) -> None:
    alice, mallory = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    store = AuthorityStore(tmp_path / "s.sqlite", create=True)
    lines: list[str] = []
    inbox = Inbox(store, authority.seed, progress=lines.append)

    def receive(mid: str, sender: str, env: bytes) -> str | None:
        return asyncio.run(inbox.receive(mid, sender, 1.0, env))

    good = seal_item("submission", _submission(), alice, authority.public_key)
    assert receive("m1", alice.account_id, good) is not None
    assert receive("m1", alice.account_id, good) is None  # relay redelivery
    report = seal_report(
        Report(alice.account_id, mallory.account_id, 1.0, "fp", 3, 2, 80, PDQ, "00" * 32),
        authority.public_key,
    )
    assert receive("m2", alice.account_id, report) is not None
    refusals = {
        "m3": (mallory.account_id, good),  # alice's item replayed by mallory: forged
        "m4": (mallory.account_id, report),  # a report naming alice, sent by mallory: forged
        "m5": (
            alice.account_id,
            seal_item("submission", _submission(), alice, AuthorityKey.generate().public_key),
        ),
        "m6": (alice.account_id, seal_item("gift", {"x": 1}, alice, authority.public_key)),
        "m7": (
            alice.account_id,
            seal_item(
                "submission", {**_submission("cd" * 16), "hashes": {"pdq": "zz"}}, alice, authority.public_key
            ),
        ),
        "m8": (alice.account_id, b"hello"),
    }
    for mid, (sender, env) in refusals.items():
        assert receive(mid, sender, env) is None
    reasons = [r["reason"] for r in store.refused()]
    assert len(reasons) == 6
    assert "forged" in reasons[0] and "forged" in reasons[1] and "does not open" in reasons[2]
    assert "unknown item kind" in reasons[3] and "malformed submission" in reasons[4]
    assert [i.kind for i in store.items()] == ["submission", "report"]
    assert store.items(kind="report")[0].body["votes"] == 2
    assert sum("refused" in line for line in lines) == 6
    store.close()


def _workflow(tmp_path: Path, authority: AuthorityKey) -> tuple[AuthorityStore, Workflow, Path]:
    bank = tmp_path / "bank.sqlite"
    with HashBank(bank) as b:
        b.add([NewEntry("pdq", "c3" * 32, 100, origin="ncmec")], now=1)
    store = AuthorityStore(tmp_path / "s.sqlite", create=True)
    lines: list[str] = []
    return store, Workflow(store, bank, authority, progress=lines.append), bank


def test_workflow_adds_with_provenance_removes_on_appeal_and_queues_notices(
    tmp_path: Path, authority: AuthorityKey
) -> None:
    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    store, workflow, bank = _workflow(tmp_path, authority)
    inbox = Inbox(store, authority.seed)
    sub_id = asyncio.run(
        inbox.receive(
            "m1", alice.account_id, 1.0, seal_item("submission", _submission(), alice, authority.public_key)
        )
    )
    assert sub_id is not None
    assert store.bank_generation() == 1 and store.published_generation() == 0  # the first serve publishes
    store.decide(sub_id, accept=True, note="ok", reviewer="rev")
    assert workflow.apply_pending() == 1 and workflow.apply_pending() == 0
    with HashBank(bank) as b:
        entries = {(e.algorithm, e.hash): e for e in b.entries()}
    assert {("pdq", PDQ), ("pdq", _flip(PDQ, 3)), ("onnx", "11" * 32)} <= set(entries)
    assert entries[("pdq", PDQ)].sources == ("authority-review",) and sub_id in entries[("pdq", PDQ)].source
    assert store.bank_generation() == 2 and store.outbox_pending() == []  # notice held until published
    generation, floor = workflow.build_floor()
    built = workflow.build(generation=generation, min_version=floor)
    workflow.record_build(built)
    assert (
        built.entries == 3
        and verify_snapshot(built.data, authority.public_key).header.snapshot_version == built.version
    )
    workflow.published(built, 0.01)
    assert store.published_generation() == 2 and not workflow.needs_publish()
    ((_eid, recipient, payload),) = store.outbox_pending()
    notice = open_notice(payload, alice, authority.public_key)
    assert (
        recipient == alice.account_id
        and notice.decision == "accepted"
        and notice.snapshot_version == built.version
    )

    appeal = {
        "appeal_id": "ef" * 16,
        "created_at": 2.0,
        "reason": "my cat",
        "snapshot_version": built.version,
        "votes": 4,
        "blocked": True,
        "hashes": {"pdq": _flip(PDQ, 40)},
    }
    appeal_id = asyncio.run(
        inbox.receive("m2", bob.account_id, 2.0, seal_item("appeal", appeal, bob, authority.public_key))
    )
    assert appeal_id is not None
    store.decide(appeal_id, accept=True, note="benign", reviewer="rev")
    workflow.apply_pending()
    with HashBank(bank) as b:
        left = {e.hash for e in b.entries(algorithm="pdq")}
    assert left == {"c3" * 32}  # the submission's hashes (within 2D+1 = 63 bits of the appeal) left
    decision = store.decision_of(appeal_id)
    assert decision is not None and decision.outcome["removed"] == 2 and decision.notice == "after_publish"


def test_rejections_notify_at_once_and_reports_get_no_notice(tmp_path: Path, authority: AuthorityKey) -> None:
    alice = IdentityKeyPair.generate()
    store, workflow, _bank = _workflow(tmp_path, authority)
    inbox = Inbox(store, authority.seed)
    sub_id = asyncio.run(
        inbox.receive(
            "m1", alice.account_id, 1.0, seal_item("submission", _submission(), alice, authority.public_key)
        )
    )
    report = seal_report(
        Report(alice.account_id, "b" * 32, 1.0, None, None, 1, None, None, "00" * 32), authority.public_key
    )
    rep_id = asyncio.run(inbox.receive("m2", alice.account_id, 1.0, report))
    assert sub_id and rep_id
    store.decide(sub_id, accept=False, note="not an image of you", reviewer="rev")
    store.decide(rep_id, accept=True, reviewer="rev")
    workflow.apply_pending()
    assert store.bank_generation() == 1
    ((_eid, _to, payload),) = store.outbox_pending()
    assert open_notice(payload, alice, authority.public_key).decision == "rejected"


def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], authority: AuthorityKey
) -> None:
    key, other = tmp_path / "a.key", tmp_path / "b.key"
    authority.save(key)
    AuthorityKey.generate().save(other)
    bank, store = tmp_path / "bank.sqlite", tmp_path / "store.sqlite"

    def fails(*argv: str, match: str) -> None:
        capsys.readouterr()
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, err

    fails("authority", "queue", "--store", str(store), match="no such authority store")
    serve = ["authority", "serve", "--bank", str(bank), "--store", str(store), "--relay", "ws://127.0.0.1:9"]
    fails(*serve, "--key", str(key), match="no such bank")
    with HashBank(bank) as b:
        b.add([NewEntry("pdq", PDQ, 90)], now=1)
    fails(*serve, "--key", str(tmp_path / "missing.key"), match="no such key file")
    with AuthorityStore(store, create=True) as s:
        s.bind_key(authority.public_hex)
        fails(*serve, "--key", str(other), match="wrong --key")
        s.lock_exclusive()
        fails(*serve, "--key", str(key), match="locked by another")
    fails("authority", "review", "x-123", "--accept", "--store", str(store), match="no item with id")
    fails(
        "authority",
        "attachment",
        "x-123",
        "--store",
        str(store),
        "--key",
        str(key),
        "--out",
        str(tmp_path / "o.jpg"),
        match="no item with id",
    )
    store.write_bytes(b"not a database at all" * 100)
    fails("authority", "queue", "--store", str(store), match="not a usable authority store")
    assert main(["authority", "audit", "--store", str(tmp_path / "nope.sqlite")]) == 2


def test_cli_queue_review_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], authority: AuthorityKey
) -> None:
    alice = IdentityKeyPair.generate()
    store_path = tmp_path / "store.sqlite"
    with AuthorityStore(store_path, create=True) as store:
        item_id = asyncio.run(
            Inbox(store, authority.seed).receive(
                "m1",
                alice.account_id,
                1.0,
                seal_item("submission", _submission(), alice, authority.public_key),
            )
        )
    capsys.readouterr()
    assert main(["authority", "queue", "--store", str(store_path)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["id"] == item_id and line["kind"] == "submission" and line["received_at"] > 0
    assert line["hashes"]["pdq"] == PDQ
    assert (
        main(
            [
                "authority",
                "review",
                str(item_id),
                "--reject",
                "--store",
                str(store_path),
                "--note",
                "no",
                "--reviewer",
                "ana",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["decision"] == "rejected"
    assert main(["authority", "queue", "--store", str(store_path)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["authority", "audit", "--store", str(store_path), "--item", str(item_id)]) == 0
    audit = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(a["action"], a["actor"], a["why"]) for a in audit][-1] == ("decision.rejected", "ana", "no")


def test_a_refused_publish_loses_nothing_and_is_retried(tmp_path: Path, authority: AuthorityKey) -> None:
    """A real relay that does not list the authority key refuses the snapshot: the decision stays applied,
    the bank keeps its change, the generation stays dirty; once the relay accepts the key the retry
    publishes and the held notice is queued."""
    from client.authority.service import AuthorityService
    from client.demo.world import RelayHandle

    alice = IdentityKeyPair.generate()
    store, workflow, bank = _workflow(tmp_path, authority)
    lines: list[str] = []

    async def main() -> None:
        relay = await RelayHandle(tmp_path / "relay.sqlite").start()  # lists no authority
        service = AuthorityService(
            authority, store, workflow, relay.url, progress=lines.append, publish_timeout=5.0
        )
        item = await service.inbox.receive(
            "m1", alice.account_id, 1.0, seal_item("submission", _submission(), alice, authority.public_key)
        )
        assert item is not None
        store.decide(item, accept=True, reviewer="rev")
        await service.net.start()
        try:
            await service.step()
            assert store.unapplied() == [] and store.bank_generation() == 2
            assert store.published_generation() == 0 and workflow.needs_publish()
            assert [a.action for a in store.audit_log()].count("snapshot.publish_failed") == 1
            assert any("retrying" in line for line in lines) and store.outbox_pending() == []
            with HashBank(bank) as b:
                assert PDQ in {e.hash for e in b.entries()}
            await relay.stop()
            relay2 = await RelayHandle(
                tmp_path / "relay.sqlite", port=relay.port, authorities=[authority.public_key]
            ).start()
            try:
                service._retry_at = 0.0
                for _ in range(100):
                    await service.step()
                    if not workflow.needs_publish():
                        break
                    service._retry_at = 0.0
                    await asyncio.sleep(0.1)
                assert store.published_generation() == 2 and len(store.outbox_pending()) == 1
            finally:
                await relay2.stop()
        finally:
            await service.net.stop()

    asyncio.run(main())
    store.close()


def test_a_new_kind_plugs_in_through_the_table(tmp_path: Path, authority: AuthorityKey) -> None:
    """How threshold vouchers (issue 14) plug in: a kind registered with ``register_kind`` is validated,
    stored ``held`` (out of the queue) and handed to its hook, without touching the inbox or serve."""
    from client.authority.inbox import KINDS, KindSpec, Prepared, kind_spec, register_kind
    from client.authority.items import OpenedItem

    seen: list[str] = []

    async def prepare(item: OpenedItem, fetch: object) -> Prepared:
        if not isinstance(item.body.get("share"), bytes):
            raise ItemError("no share")
        return Prepared(str(item.body["id"]), {"period": item.body["period"]})

    def after_store(store: AuthorityStore, item_id: str) -> None:
        seen.append(item_id)
        if len(store.items(status="held", kind="voucher")) >= 2:  # "t = 2": open them into the queue
            store.add_item(
                kind="report",
                sender="opened",
                sender_key=None,
                relay_mid=f"open-{item_id}",
                ref="ee" * 16,
                body={"opened_from": 2},
                received_at=3.0,
            )

    previous = kind_spec("voucher")  # the real voucher kind (client.authority.vouchers), restored below
    register_kind(KindSpec("voucher", prepare, initial_status="held", after_store=after_store))
    alice = IdentityKeyPair.generate()
    try:
        with AuthorityStore(tmp_path / "s.sqlite", create=True) as store:
            inbox = Inbox(store, authority.seed)
            for n in (1, 2):
                env = seal_item(
                    "voucher", {"id": f"{n:032x}", "period": 7, "share": b"s"}, alice, authority.public_key
                )
                assert asyncio.run(inbox.receive(f"m{n}", alice.account_id, 1.0, env)) is not None
                if n == 1:
                    assert store.items() == []  # held: reviewers see nothing below the threshold
            bad = seal_item("voucher", {"id": "3" * 32, "period": 7}, alice, authority.public_key)
            assert asyncio.run(inbox.receive("m3", alice.account_id, 1.0, bad)) is None
            assert len(seen) == 2 and [i.kind for i in store.items()] == ["report"]
            assert "malformed voucher" in store.refused()[0]["reason"]
    finally:
        KINDS.pop("voucher", None)
        if previous is not None:
            register_kind(previous)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=9) | st.dictionaries(st.text(max_size=16), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["submission", "appeal", "report", "other"]),
    body=st.dictionaries(
        st.sampled_from(
            [
                "submission_id",
                "appeal_id",
                "created_at",
                "hashes",
                "reason",
                "quality",
                "votes",
                "snapshot_version",
                "attachment",
                "blocked",
            ]
        ),
        _values,
        max_size=10,
    ),
)
def test_hostile_bodies_cost_one_envelope(
    tmp_path_factory: pytest.TempPathFactory, kind: str, body: dict[str, object]
) -> None:
    authority = AuthorityKey(b"\x01" * 32)
    alice = IdentityKeyPair(b"\x02" * 32)
    with AuthorityStore(tmp_path_factory.mktemp("fuzz") / "s.sqlite", create=True) as store:
        inbox = Inbox(store, authority.seed)
        env = seal_item(kind, body, alice, authority.public_key)
        item_id = asyncio.run(inbox.receive("m1", alice.account_id, 1.0, env))
        if item_id is None:
            assert len(store.refused()) == 1
        else:
            assert store.get_item(item_id).kind == kind and store.refused() == []
