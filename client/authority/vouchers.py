"""Threshold vouchers at the authority: held per account and period, opened into the queue at t.

Plugs into the inbox's tables (``client.authority.inbox``):

* envelope ``PSVC`` opens the outer seal (``client.vouchers.voucher.open_voucher``); the voucher names its
  account, which must be the relay-authenticated sender (the inbox refuses a forgery);
* kind ``voucher`` is stored with status ``held``: its body is the still-encrypted voucher (account, period,
  threshold, id and the encoded voucher), never shown to reviewers, never opened content;
* after each one is stored, :func:`process_vouchers` rebuilds the account's
  :class:`~client.vouchers.book.VoucherBook` for that period from the store and adds the new voucher. Below
  t nothing opens. At t the book reconstructs the period key, and every real voucher of the period becomes a
  ``report`` item in the queue (status ``waiting``, validated like a sealed report, with a ``threshold``
  field saying how it was opened); synthetic, forged and damaged vouchers are dropped; a voucher whose share
  index was already used (a replay) is refused. Each step is in the audit log.

State beside the items, in two tables of the same SQLite file (created on first use; an authority store
without vouchers never has them): ``voucher_groups`` (per account, period and threshold: the t points of the
reconstructed polynomial once open, needed to open later vouchers of that period) and ``voucher_state``
(per voucher: held, opened, dropped or refused, and the report item it became). A crash between storing a
voucher and processing it is caught up at the next voucher: unprocessed voucher items are processed first.
Opening is idempotent: report items are keyed by the voucher id, so a re-run adds nothing twice.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Coroutine
from typing import Any

from client.authority.inbox import (
    BlobFetcher,
    KindSpec,
    Prepared,
    kind_spec,
    register_envelope,
    register_kind,
)
from client.authority.items import ItemError, OpenedItem, is_ref
from client.authority.store import AuthorityStore
from client.vouchers.book import AddOutcome, GroupKey, GroupStatus, VoucherBook, VoucherRefused
from client.vouchers.issuer import report_from_body
from client.vouchers.shamir import Share
from client.vouchers.voucher import (
    VOUCHER_MAGIC,
    Voucher,
    VoucherError,
    decode_voucher,
    encode_voucher,
    open_voucher,
)

__all__ = ["process_vouchers", "voucher_groups"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voucher_groups (
    account TEXT NOT NULL,
    period INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    curve TEXT,
    opened_at REAL,
    PRIMARY KEY (account, period, threshold)
);
CREATE TABLE IF NOT EXISTS voucher_state (
    voucher_id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL UNIQUE REFERENCES items (id),
    account TEXT NOT NULL,
    period INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('held', 'opened', 'dropped', 'refused')),
    report_item TEXT,
    why TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS voucher_state_group ON voucher_state (account, period, threshold);
"""


def _ensure_schema(store: AuthorityStore) -> None:
    with store.transaction() as db:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)


def _has_tables(store: AuthorityStore) -> bool:
    with store.transaction() as db:
        row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='voucher_state'").fetchone()
    return row is not None


# ----- the inbox's envelope and kind -------------------------------------------------------------
def _open_envelope(envelope: bytes, seed: bytes) -> OpenedItem:
    try:
        v = open_voucher(envelope, seed)
    except VoucherError as exc:
        raise ItemError(str(exc)) from None
    body = {"account": v.account, "period": v.period, "threshold": v.threshold, "voucher_id": v.id_hex,
            "voucher": encode_voucher(v).hex()}
    return OpenedItem("voucher", body, b"", v.account)


def _voucher_of(body: dict[str, Any]) -> Voucher:
    raw = body.get("voucher")
    if not isinstance(raw, str) or len(raw) > 16_384:
        raise ItemError("voucher body is missing")
    try:
        return decode_voucher(bytes.fromhex(raw))
    except (ValueError, VoucherError) as exc:
        raise ItemError(f"voucher is malformed: {exc}") from None


async def _prepare_voucher(item: OpenedItem, fetch: BlobFetcher | None) -> Prepared:
    if item.sender_key:
        raise ItemError("a voucher travels in a PSVC envelope, never as a signed item")
    v = _voucher_of(item.body)
    if not is_ref(v.id_hex) or v.account != item.sender:
        raise ItemError("voucher id or account is malformed")
    body = {"account": v.account, "period": v.period, "threshold": v.threshold, "voucher_id": v.id_hex,
            "voucher": encode_voucher(v).hex()}
    return Prepared(v.id_hex, body)


def _after_store(store: AuthorityStore, item_id: str) -> None:
    process_vouchers(store, item_id)


# ----- processing ---------------------------------------------------------------------------------
def _run_sync(awaitable: Awaitable[Prepared]) -> Prepared:
    """Run a coroutine that never suspends (the report kind's validation) from synchronous code."""
    if not isinstance(awaitable, Coroutine):
        raise ItemError("report validation is not a coroutine")
    try:
        awaitable.send(None)
    except StopIteration as done:
        result: Prepared = done.value
        return result
    awaitable.close()
    raise ItemError("report validation unexpectedly waited for I/O")


def _report_item_body(store: AuthorityStore, opened_body: bytes, account: str, voucher_id: str,
                      group: GroupKey, received: int) -> dict[str, Any]:
    report = report_from_body(opened_body)
    spec = kind_spec("report")
    if spec is None:
        raise ItemError("the report kind is not registered")
    fields = {k: getattr(report, k) for k in report.__dataclass_fields__}
    as_item = OpenedItem("report", {**fields, "_ref": voucher_id}, b"", account)
    prepared = _run_sync(spec.prepare(as_item, None))
    return {**prepared.body, "threshold": {"period": group[1], "t": group[2], "vouchers": received,
                                           "voucher_id": voucher_id}}


def _group_rows(store: AuthorityStore, group: GroupKey) -> tuple[list[tuple[str, Voucher, str | None]],
                                                                  list[Share] | None]:
    with store.transaction() as db:
        rows = db.execute(
            "SELECT i.id, i.body, s.state FROM items i LEFT JOIN voucher_state s ON s.item_id = i.id"
            " WHERE i.kind='voucher' AND i.sender=? ORDER BY i.received_at, i.rowid", (group[0],)).fetchall()
        curve_row = db.execute(
            "SELECT curve FROM voucher_groups WHERE account=? AND period=? AND threshold=?", group).fetchone()
    out = []
    for item_id, body, state in rows:
        try:
            v = _voucher_of(json.loads(body))
        except (ItemError, ValueError):
            continue
        if (v.account, v.period, v.threshold) == group:
            out.append((item_id, v, state))
    curve = None
    if curve_row is not None and curve_row[0]:
        curve = [Share(int(x, 16), int(y, 16)) for x, y in json.loads(curve_row[0])]
    return out, curve


def _record(store: AuthorityStore, item_id: str, v: Voucher, state: str, why: str = "",
            report_item: str | None = None) -> None:
    with store.transaction() as db:
        db.execute("INSERT INTO voucher_state (voucher_id, item_id, account, period, threshold, state,"
                   " report_item, why) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (voucher_id) DO UPDATE SET state=excluded.state,"
                   " report_item=COALESCE(excluded.report_item, voucher_state.report_item), why=excluded.why",
                   (v.id_hex, item_id, v.account, v.period, v.threshold, state, report_item, why[:500]))


def _process_group(store: AuthorityStore, group: GroupKey) -> None:
    rows, curve = _group_rows(store, group)
    book = VoucherBook()
    by_id = {v.id_hex: item_id for item_id, v, _ in rows}
    usable = [v for _, v, state in rows if state != "refused"]
    if curve is not None and usable:
        book.restore_open(usable[0], curve)
    pending: list[tuple[str, Voucher]] = []
    for item_id, v, state in rows:
        if state is None:
            pending.append((item_id, v))
        elif state != "refused":
            book.add(v, attempt=False)
    for item_id, v in pending:
        try:
            outcome = book.add(v)
        except VoucherRefused as exc:
            _record(store, item_id, v, "refused", str(exc))
            with store.transaction():
                store.audit(v.account, "voucher.refused", item_id=item_id, why=str(exc))
            continue
        _record(store, item_id, v, "held")
        held = len([r for r in rows if r[2] != "refused"])
        _apply_outcome(store, book, group, outcome, by_id, received=held)


def _apply_outcome(store: AuthorityStore, book: VoucherBook, group: GroupKey, outcome: AddOutcome,
                   by_id: dict[str, str], *, received: int) -> None:
    if outcome.status == "held":
        return
    curve = book.curve(group)
    newly_open = False
    with store.transaction() as db:
        row = db.execute("SELECT curve FROM voucher_groups WHERE account=? AND period=? AND threshold=?",
                         group).fetchone()
        if row is None or not row[0]:
            assert curve is not None
            points = json.dumps([[format(p.x, "x"), format(p.y, "x")] for p in curve])
            db.execute("INSERT INTO voucher_groups (account, period, threshold, curve, opened_at)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, period, threshold)"
                       " DO UPDATE SET curve=excluded.curve, opened_at=excluded.opened_at",
                       (*group, points, store.clock()))
            newly_open = True
    account = group[0]
    if newly_open:
        with store.transaction():
            store.audit("serve", "vouchers.opened", why=f"{received} vouchers reached t={group[2]} in period "
                        f"{group[1]}: the period key was reconstructed",
                        detail={"account": account[:8], "period": group[1], "threshold": group[2]})
    for opened in outcome.opened:
        voucher_item = by_id.get(opened.voucher_id, "")
        try:
            body = _report_item_body(store, opened.body, account, opened.voucher_id, group, received)
        except (ItemError, VoucherError) as exc:
            with store.transaction() as db:
                db.execute("UPDATE voucher_state SET state='dropped', why=? WHERE voucher_id=?",
                           (f"opened but not a valid report: {exc}"[:500], opened.voucher_id))
                store.audit(account, "voucher.dropped", item_id=voucher_item,
                            why=f"not a valid report: {exc}")
            continue
        report_item = store.add_item(kind="report", sender=account, sender_key=None,
                                     relay_mid=f"voucher:{opened.voucher_id}", ref=opened.voucher_id,
                                     body=body, received_at=store.clock(), status="waiting")
        with store.transaction() as db:
            db.execute("UPDATE voucher_state SET state='opened', report_item=COALESCE(?, report_item)"
                       " WHERE voucher_id=?", (report_item, opened.voucher_id))
    if outcome.dropped:
        with store.transaction() as db:
            for vid in outcome.dropped:
                db.execute("UPDATE voucher_state SET state='dropped', why=? WHERE voucher_id=?",
                           ("its share is not on the period's polynomial or it does not open "
                            "(synthetic, forged or damaged)", vid))
                store.audit(account, "voucher.dropped", item_id=by_id.get(vid),
                            why="synthetic, forged or damaged: it does not open under the period key")


_caught_up: weakref.WeakSet[AuthorityStore] = weakref.WeakSet()
"""Stores whose unprocessed vouchers (a crash between storing and processing) were looked for."""


def process_vouchers(store: AuthorityStore, item_id: str | None = None) -> None:
    """Process the voucher ``item_id`` (its account's group), after a one-time catch-up per store."""
    if store not in _caught_up:
        _ensure_schema(store)
        _caught_up.add(store)
        item_id = None
    if item_id is not None:
        with store.transaction() as db:
            row = db.execute("SELECT body FROM items WHERE id=? AND kind='voucher'", (item_id,)).fetchone()
        rows = [row] if row is not None else []
    else:
        with store.transaction() as db:
            rows = db.execute(
                "SELECT i.body FROM items i LEFT JOIN voucher_state s ON s.item_id = i.id"
                " WHERE i.kind='voucher' AND i.status='held' AND s.item_id IS NULL"
                " ORDER BY i.received_at, i.rowid").fetchall()
    groups: list[GroupKey] = []
    for (body,) in rows:
        try:
            v = _voucher_of(json.loads(body))
        except (ItemError, ValueError):
            continue
        key = (v.account, v.period, v.threshold)
        if key not in groups:
            groups.append(key)
    for key in groups:
        _process_group(store, key)


def voucher_groups(store: AuthorityStore) -> list[GroupStatus]:
    """Every (account, period, threshold) with vouchers, sorted by account and period."""
    if not _has_tables(store):
        return []
    with store.transaction() as db:
        rows = db.execute(
            "SELECT s.account, s.period, s.threshold,"
            " SUM(s.state != 'refused'), SUM(s.state = 'opened'), SUM(s.state = 'dropped'),"
            " MAX(g.curve IS NOT NULL AND g.curve != '')"
            " FROM voucher_state s LEFT JOIN voucher_groups g"
            " ON g.account = s.account AND g.period = s.period AND g.threshold = s.threshold"
            " GROUP BY s.account, s.period, s.threshold ORDER BY s.account, s.period, s.threshold").fetchall()
    return [GroupStatus(a, int(p), int(t), int(n or 0), bool(o), int(k or 0), int(d or 0))
            for a, p, t, n, k, d, o in rows]


register_envelope(VOUCHER_MAGIC, "voucher", _open_envelope)
register_kind(KindSpec("voucher", _prepare_voucher, initial_status="held", after_store=_after_store))
