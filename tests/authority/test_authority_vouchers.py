"""Threshold vouchers in the authority's inbox and store: held encrypted below t, opened into the queue at t,
periods kept apart, replays and forgeries refused, synthetic vouchers dropped, `authority vouchers` output."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from client.authority.inbox import Inbox
from client.authority.items import seal_item
from client.authority.store import AuthorityStore
from client.authority.vouchers import voucher_groups
from client.cli.main import main
from client.vouchers.voucher import PERIOD_SECONDS, encode_voucher, open_voucher, seal_voucher
from scanner.authority import AuthorityKey
from tests.authority.voucher_senders import RECIPIENT, SHA, Sender, receive


def _reports(store: AuthorityStore) -> list[dict[str, Any]]:
    return [i.to_json() for i in store.items(kind="report")]


def test_below_t_nothing_opens_and_at_t_everything_real_does(tmp_path: Path) -> None:
    authority = AuthorityKey.generate()
    alice = Sender(authority, threshold=3)
    path = tmp_path / "store.sqlite"
    with AuthorityStore(path, create=True) as store:
        inbox = Inbox(store, authority.seed)
        for env in (alice.real(0), alice.synthetic(), alice.real(1)):
            assert receive(inbox, alice.account, env) is not None
        [group] = voucher_groups(store)
        assert (group.vouchers, group.threshold, group.opened, group.progress) == (3, 3, False, "3 of 3")
        assert _reports(store) == []
        assert [i.kind for i in store.items()] == []  # held vouchers never reach the reviewers' queue
    # no opened content at rest: the report fields are nowhere in the store's files
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert RECIPIENT.encode() not in data and SHA.encode() not in data, file.name
    with AuthorityStore(path) as store:
        inbox = Inbox(store, authority.seed)
        receive(inbox, alice.account, alice.real(2))
        reports = _reports(store)
        assert len(reports) == 3 and {r["status"] for r in reports} == {"waiting"}
        assert {r["reporter"] for r in reports} == {alice.account}
        assert all(r["recipient"] == RECIPIENT and r["threshold"]["t"] == 3 for r in reports)
        assert sorted(r["hashes"]["pdq"] for r in reports) == [f"{n:02x}" * 32 for n in range(3)]
        [group] = voucher_groups(store)
        assert group.opened and group.opened_vouchers == 3 and group.dropped_vouchers == 1
        # later vouchers of an opened period open at once; synthetic ones are dropped
        receive(inbox, alice.account, alice.real(3))
        receive(inbox, alice.account, alice.synthetic())
        assert len(_reports(store)) == 4
        actions = [a.action for a in store.audit_log()]
        assert actions.count("vouchers.opened") == 1 and actions.count("voucher.dropped") == 2


def test_periods_never_combine_and_cli_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    authority = AuthorityKey.generate()
    alice, bob = Sender(authority, threshold=2), Sender(authority, threshold=3)
    path = tmp_path / "store.sqlite"
    with AuthorityStore(path, create=True) as store:
        inbox = Inbox(store, authority.seed)
        receive(inbox, alice.account, alice.real(0, now=10 * PERIOD_SECONDS))
        receive(inbox, alice.account, alice.real(1, now=11 * PERIOD_SECONDS))
        receive(inbox, bob.account, bob.real(0))
        assert _reports(store) == []
    assert main(["authority", "vouchers", "--store", str(path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(list(line) == ["account", "period", "vouchers", "threshold", "opened"] for line in lines)
    expected = sorted([
        {"account": alice.account, "period": 10, "vouchers": 1, "threshold": 2, "opened": False},
        {"account": alice.account, "period": 11, "vouchers": 1, "threshold": 2, "opened": False},
        {"account": bob.account, "period": 10, "vouchers": 1, "threshold": 3, "opened": False},
    ], key=lambda d: (d["account"], d["period"]))
    assert lines == expected
    assert main(["authority", "vouchers", "--store", str(tmp_path / "missing.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_replayed_forged_and_foreign_vouchers_are_refused(tmp_path: Path) -> None:
    authority = AuthorityKey.generate()
    alice, mallory = Sender(authority, threshold=2), Sender(authority, threshold=2)
    with AuthorityStore(tmp_path / "store.sqlite", create=True) as store:
        inbox = Inbox(store, authority.seed)
        first = alice.real(0)
        assert receive(inbox, alice.account, first) is not None
        # the same voucher again (a replay through the relay): stored once
        assert receive(inbox, alice.account, first) is None
        # a new voucher id reusing the first voucher's share index: refused by the book
        v0 = open_voucher(first, authority.seed)
        v1 = open_voucher(alice.real(1), authority.seed)
        reused = dataclasses.replace(v1, x=v0.x, y=v0.y)
        receive(inbox, alice.account, seal_voucher(reused, authority.public_key))
        # a voucher naming alice sent by mallory: refused by the inbox as a forgery
        assert receive(inbox, mallory.account, alice.real(2)) is None
        assert any("forged voucher" in r["reason"] for r in store.refused())
        # a damaged envelope: refused, costs only itself
        assert receive(inbox, alice.account, b"PSVC" + os.urandom(300)) is None
        # a voucher dressed as a signed item is refused too (vouchers only travel in PSVC envelopes)
        signed = seal_item("voucher", {"voucher": encode_voucher(v1).hex()}, alice.identity,
                           authority.public_key)
        assert receive(inbox, alice.account, signed) is None
        assert "PSVC envelope" in store.refused()[-1]["reason"]
        [group] = voucher_groups(store)
        assert (group.vouchers, group.opened) == (1, False)
        assert "voucher.refused" in [a.action for a in store.audit_log()]
        # a forged share (right id space, wrong value) is dropped once the period opens, never opened
        forged = dataclasses.replace(open_voucher(alice.real(3), authority.seed), y=12345)
        receive(inbox, alice.account, seal_voucher(forged, authority.public_key))
        assert _reports(store) == []
        receive(inbox, alice.account, alice.real(4))
        reports = _reports(store)
        assert sorted(r["hashes"]["pdq"] for r in reports) == ["00" * 32, "04" * 32]
        [group] = voucher_groups(store)
        assert group.opened and group.dropped_vouchers == 1
        assert len(encode_voucher(forged)) == len(encode_voucher(v0))


def test_a_voucher_stored_but_not_processed_is_caught_up(tmp_path: Path) -> None:
    """A crash between storing a voucher and processing it: the next store that serves catches it up."""
    authority = AuthorityKey.generate()
    alice = Sender(authority, threshold=2)
    path = tmp_path / "store.sqlite"
    v = open_voucher(alice.real(0), authority.seed)
    with AuthorityStore(path, create=True) as store:
        store.add_item(kind="voucher", sender=alice.account, sender_key=None, relay_mid="m-crashed",
                       ref=v.id_hex, status="held", received_at=1.0,
                       body={"account": v.account, "period": v.period, "threshold": v.threshold,
                             "voucher_id": v.id_hex, "voucher": encode_voucher(v).hex()})
    with AuthorityStore(path) as store:
        assert voucher_groups(store) == []
        receive(Inbox(store, authority.seed), alice.account, alice.real(1))
        [group] = voucher_groups(store)
        assert group.opened and group.opened_vouchers == 2
        assert sorted(r["hashes"]["pdq"] for r in _reports(store)) == ["00" * 32, "01" * 32]
