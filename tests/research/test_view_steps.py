"""The compute steps of `research relay-view` and `research authority-view`, on hand-written inputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from research.evals.authority_view import cross_account_links, item_fact
from research.evals.relay_view import analyse, read_log

A, B, AUTH = "a" * 43, "b" * 43, "c" * 43


def _log(tmp_path: Path, events: list[dict[str, Any]], junk: str = "") -> Path:
    path = tmp_path / "meta.jsonl"
    path.write_text(junk + "".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def test_read_log_sorts_by_time_and_counts_bad_lines(tmp_path: Path) -> None:
    path = _log(tmp_path, [{"ts": 2.0, "event": "send"}, {"ts": 1.0, "event": "auth"}],
                junk='not json\n{"ts": "x", "event": "send"}\n\n')
    events, bad = read_log(path)
    assert [e["event"] for e in events] == ["auth", "send"] and bad == [1, 2]
    with pytest.raises(ValueError, match="no metadata events"):
        read_log(_log(tmp_path, [], junk="nope\n"))
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "missing.jsonl")


def test_analyse_builds_the_social_graph_and_pairs_uploads_with_sends(tmp_path: Path) -> None:
    events = [
        {"ts": 0.0, "event": "auth", "account": A, "address": "127.0.0.1"},
        {"ts": 0.1, "event": "auth", "account": AUTH, "address": "127.0.0.2", "authority": True},
        {"ts": 1.0, "event": "blob.put", "account": A, "size": 5000},
        {"ts": 2.0, "event": "send", "from": A, "to": B, "size": 300},
        {"ts": 9.0, "event": "blob.put", "account": A, "size": 7000},  # no send within 5 s: not paired
        {"ts": 20.0, "event": "send", "from": A, "to": B, "size": 200},
        {"ts": 21.0, "event": "send", "from": A, "to": AUTH, "size": 900},
    ]
    view = analyse(*read_log(_log(tmp_path, events)))
    assert view.authorities == {AUTH} and view.leaks == []
    assert view.edges[(A, B)] == {"count": 2, "bytes": 500, "first": 2.0, "last": 20.0}
    assert view.inferred == [{"from": A, "to": B, "blob_bytes": 5000, "at": 1.0}]
    assert len(view.to_authority) == 1
    assert view.accounts[A]["addresses"] == {"127.0.0.1"} and view.accounts[A]["sessions"] == 1
    assert view.accounts[B]["sessions"] == 0 and view.accounts[B]["first"] == 2.0


def test_analyse_flags_content_like_fields(tmp_path: Path) -> None:
    view = analyse(*read_log(_log(tmp_path, [{"ts": 0.0, "event": "send", "from": A, "text": "hi"}])))
    assert view.leaks == ["text"]


def _item(item_id: str, kind: str, sender: str, pdq: str | None, **body: Any) -> Any:
    hashes = {"pdq": pdq} if pdq else {}
    return SimpleNamespace(id=item_id, kind=kind, sender=sender, body={"hashes": hashes, **body},
                           has_attachment=False)


def test_cross_account_links_need_two_accounts_and_near_hashes() -> None:
    near = "0" * 63 + "f"  # 4 bits from zero
    items = [
        _item("i1", "submission", A, "0" * 64),
        _item("i2", "appeal", B, near),
        _item("i3", "report", A, near),  # same account as i1: not a link
        _item("i4", "report", B, "f" * 64),  # far from everything
        _item("i5", "voucher", B, None),
    ]
    links = cross_account_links(items)
    assert links == [["i1", "submission", A[:8], "i2", "appeal", B[:8], 4],
                     ["i2", "appeal", B[:8], "i3", "report", A[:8], 0]]
    assert item_fact(items[0]) == f"{A[:8]} holds a private photo; 1 PDQ hashes of it"
