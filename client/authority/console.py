"""`pocketscan authority console`: the reviewers' Textual console over the authority store.

Left, the queue (waiting items first; ``w`` toggles decided ones); right, the selected item's detail: kind,
sender (the reporter, submitter or appellant), when it arrived, its hashes, votes and snapshot version, the
appeal's reason and whether an image is attached, and its decision. A note field and Accept / Reject record
the decision in the store (``authority serve`` applies and publishes it). ``l`` shows the audit log; ``v``
shows the threshold vouchers per account and key period, as "k of t" (held, unreadable) or "opened". The
console re-reads the store every second, so items that ``authority serve`` receives appear by themselves.

Everything shown comes from senders and is treated as text: it is escaped, never markup, never an id.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.markup import escape
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from client.authority.store import AuthorityStore, Item, StoreError

__all__ = ["ReviewConsole", "describe_item"]


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _summary(item: Item) -> str:
    b = item.body
    if item.kind == "report":
        return f"votes {b.get('votes')} · v{b.get('snapshot_version')}"
    if item.kind == "appeal":
        return f"v{b.get('snapshot_version')} · {str(b.get('reason', ''))[:24]}"
    if item.kind == "submission":
        return f"{1 + len(b.get('hashes', {}).get('pdq_dihedral', []))} PDQ hashes"
    return ""


def describe_item(item: Item, decision: Any = None) -> str:
    """The detail panel's text (Rich markup; every sender-controlled value escaped)."""
    b = item.body
    lines = [f"[b]{escape(item.kind)} {escape(item.id)}[/b]  ({escape(item.status)})",
             f"from      {escape(item.sender)}", f"received  {_when(item.received_at)}"]
    if item.kind == "report":
        lines += [f"reporter  {escape(str(b.get('reporter')))}",
                  f"recipient {escape(str(b.get('recipient')))}"]
        if isinstance(b.get("threshold"), dict):
            t = b["threshold"]
            lines.append(f"threshold opened when {escape(str(t.get('vouchers')))} vouchers reached "
                         f"t={escape(str(t.get('t')))} (key period {escape(str(t.get('period')))})")
    for key, label in (("votes", "votes"), ("snapshot_version", "snapshot"), ("quality", "quality"),
                       ("blocked", "blocked")):
        if key in b:
            lines.append(f"{label:<9} {escape(str(b[key]))}")
    hashes = b.get("hashes") or {}
    if hashes.get("pdq"):
        lines.append(f"pdq       {escape(str(hashes['pdq']))}")
    if hashes.get("pdq_dihedral"):
        lines.append(f"          + {len(hashes['pdq_dihedral'])} dihedral variants")
    if hashes.get("onnx"):
        lines.append(f"learned   {escape(str(hashes['onnx']))}")
    if b.get("reason"):
        lines += ["", "[b]reason[/b]", escape(str(b["reason"]))]
    if item.has_attachment:
        lines.append("\nimage attached (encrypted at rest): `pocketscan authority attachment "
                     f"{escape(item.id)} --key KEY --out FILE`")
    elif isinstance(b.get("attachment"), dict):
        lines.append(f"\nimage attachment: {escape(str(b['attachment'].get('status')))}")
    if decision is not None:
        lines += ["", f"[b]decision[/b] {escape(decision.decision)} by {escape(decision.reviewer)} at "
                      f"{_when(decision.decided_at)}", escape(decision.note)]
        if decision.applied_at is not None:
            lines.append(f"applied {_when(decision.applied_at)}: {escape(str(decision.outcome))}")
        else:
            lines.append("waiting for authority serve to apply it")
    return "\n".join(lines)


class ReviewConsole(App[None]):
    """The console (see the module docstring)."""

    TITLE = "pocketscan authority"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #queue-pane { width: 1fr; }
    #detail-pane { width: 1fr; border-left: solid $primary; padding: 0 1; }
    #queue, #audit { height: 1fr; }
    #detail { height: auto; }
    #decide { height: auto; dock: bottom; padding: 0 0 0 0; }
    #decide Button { margin: 0 1 0 0; min-width: 10; }
    #note { width: 1fr; }
    #status { height: 1; color: $text-muted; }
    .hidden { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        ("a", "accept", "Accept"), ("r", "reject", "Reject"), ("n", "note", "Note"),
        ("l", "toggle_audit", "Audit log"), ("w", "toggle_waiting", "Waiting/all"),
        ("f5", "refresh", "Refresh"), ("q", "quit", "Quit"),
        Binding("v", "toggle_vouchers", "Vouchers (k of t)", show=False),
    ]

    def __init__(self, store: AuthorityStore, *, reviewer: str, refresh_every: float = 1.0) -> None:
        super().__init__()
        self.store = store
        self.reviewer = reviewer
        self.refresh_every = refresh_every
        self.waiting_only = True
        self.items: list[Item] = []
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="queue-pane"):
                yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="audit", cursor_type="row", classes="hidden")
                yield DataTable(id="vouchers", cursor_type="row", classes="hidden")
            with Vertical(id="detail-pane"):
                with VerticalScroll():
                    yield Static("No item selected.", id="detail")
                with Horizontal(id="decide"):
                    yield Input(placeholder="note (why; sent to the submitter)", id="note", max_length=2000)
                    yield Button("Accept", variant="success", id="accept")
                    yield Button("Reject", variant="error", id="reject")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        queue = self.query_one("#queue", DataTable)
        queue.add_columns("id", "kind", "received", "summary")
        audit = self.query_one("#audit", DataTable)
        audit.add_columns("#", "when", "who", "what", "item", "why")
        self.query_one("#vouchers", DataTable).add_columns("account", "period", "vouchers", "state")
        self.reload()
        queue.focus()
        if self.refresh_every > 0:
            self.set_interval(self.refresh_every, self.reload)

    # ----- data --------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the queue (and the audit log when shown) from the store."""
        try:
            items = self.store.items(status="waiting" if self.waiting_only else None)
        except StoreError as exc:
            self._status(str(exc))
            return
        queue = self.query_one("#queue", DataTable)
        if [(i.id, i.status) for i in items] != [(i.id, i.status) for i in self.items]:
            self.items = items
            queue.clear()
            for item in items:
                queue.add_row(item.id, item.kind, _when(item.received_at)[5:16], escape(_summary(item)),
                              key=item.id)
            if self.selected in {i.id for i in items}:
                queue.move_cursor(row=[i.id for i in items].index(self.selected))
            elif items:
                self.selected = items[0].id
            else:
                self.selected = None
        self._show_detail()
        counts = self.store.counts()
        self._status(f"{counts.get('items_waiting', 0)} waiting · {counts.get('refused', 0)} refused · "
                     f"{counts.get('unapplied', 0)} decisions not yet applied · reviewer {self.reviewer}")
        if not self.query_one("#audit").has_class("hidden"):
            self._load_audit()
        if not self.query_one("#vouchers").has_class("hidden"):
            self._load_vouchers()

    def _load_audit(self) -> None:
        audit = self.query_one("#audit", DataTable)
        entries = self.store.audit_log(limit=500)
        if audit.row_count == len(entries):
            return
        audit.clear()
        for e in entries:
            audit.add_row(str(e.seq), _when(e.at)[11:], escape(e.actor[:12]), e.action, e.item_id or "",
                          escape(e.why[:60]))

    def _load_vouchers(self) -> None:
        from client.authority.vouchers import voucher_groups

        table = self.query_one("#vouchers", DataTable)
        groups = voucher_groups(self.store)
        table.clear()
        for g in groups:
            state = "in queue" if g.opened else "held"
            table.add_row(escape(g.account[:16]), str(g.period), g.progress, state)

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        if self.selected is None:
            detail.update("The queue is empty." if self.waiting_only else "No items.")
            return
        try:
            item = self.store.get_item(self.selected)
        except StoreError:
            detail.update("No item selected.")
            return
        detail.update(describe_item(item, self.store.decision_of(item.id)))

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(escape(text))

    # ----- events ------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#queue")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self._show_detail()

    @on(Button.Pressed, "#accept")
    def action_accept(self) -> None:
        self._decide(True)

    @on(Button.Pressed, "#reject")
    def action_reject(self) -> None:
        self._decide(False)

    @on(Input.Submitted, "#note")
    def _note_done(self) -> None:
        self.query_one("#queue", DataTable).focus()

    def action_note(self) -> None:
        self.query_one("#note", Input).focus()

    def _decide(self, accept: bool) -> None:
        if self.selected is None:
            self._status("select an item first")
            return
        note_input = self.query_one("#note", Input)
        try:
            decision = self.store.decide(self.selected, accept=accept, note=note_input.value,
                                         reviewer=self.reviewer)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        note_input.value = ""
        self.notify(f"{decision.item_id} {decision.decision}; authority serve applies and publishes it")
        self.reload()

    def action_toggle_audit(self) -> None:
        audit, queue = self.query_one("#audit", DataTable), self.query_one("#queue", DataTable)
        self.query_one("#vouchers", DataTable).set_class(True, "hidden")
        showing = audit.has_class("hidden")
        audit.set_class(not showing, "hidden")
        queue.set_class(showing, "hidden")
        if showing:
            self._load_audit()
            audit.focus()
        else:
            queue.focus()

    def action_toggle_vouchers(self) -> None:
        vouchers, queue = self.query_one("#vouchers", DataTable), self.query_one("#queue", DataTable)
        self.query_one("#audit", DataTable).set_class(True, "hidden")
        showing = vouchers.has_class("hidden")
        vouchers.set_class(not showing, "hidden")
        queue.set_class(showing, "hidden")
        if showing:
            self._load_vouchers()
            vouchers.focus()
        else:
            queue.focus()

    def action_toggle_waiting(self) -> None:
        self.waiting_only = not self.waiting_only
        self.items = []
        self.reload()

    def action_refresh(self) -> None:
        self.reload()
