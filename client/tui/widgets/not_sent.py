"""Images the scanner kept back stay in the conversation as "not sent" items, with their reason.

A blocked (or reported, or cancelled) image has no message in the store: nothing left the device. The item
keeps the trace where the user looks for it, instead of a banner the next image replaces. The screen keeps
the items per conversation (:class:`NotSentLog`) and shows them again when the conversation reopens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from client.interfaces import SendOutcome
from client.tui.widgets.conversation import Conversation

__all__ = ["NotSent", "NotSentItem", "NotSentLog", "not_sent_reason"]

_WHY = {
    "blocked": "blocked by your scanning policy",
    "reported": "blocked, and a sealed report went to the authority",
    "confirm": "you chose not to send it",
}


_TAILS = ("; not sent; a sealed report goes to the authority", "; not sent", "; send anyway?")


def not_sent_reason(outcome: SendOutcome) -> str:
    """Why the image did not leave: the policy's explanation (snapshot, votes) or the error."""
    if outcome.decision is not None:
        text = outcome.decision.explanation
        for tail in _TAILS:  # the item says what happened; keep the why (snapshot, votes)
            if text.endswith(tail):
                return text[: -len(tail)]
        return text
    return outcome.error or _WHY.get(outcome.status, outcome.status)


@dataclass(frozen=True)
class NotSent:
    """One image that was not sent (what the item shows; no image bytes, no hash)."""

    peer: str
    name: str
    status: str
    reason: str
    at: float
    snapshot_fingerprint: str | None = None
    """For the appeal action: which snapshot flagged it."""


class NotSentItem(Static):
    """A conversation item: ``⛔ not sent: NAME`` and why (it sits where it happened in the scrollback)."""

    DEFAULT_CSS = """
    NotSentItem {
        width: auto;
        max-width: 90%;
        height: auto;
        padding: 0 1;
        margin: 0 0 1 4;
        border-left: thick $error;
        background: $error 15%;
    }
    """

    def __init__(self, item: NotSent) -> None:
        super().__init__(classes="not-sent")
        self.item = item
        # Appeal hook: the authority's appeal flow (issue 13) adds its action here, e.g. an "Appeal"
        # binding or button on this item that submits item.snapshot_fingerprint and the image's verdict
        # to the authority. The item already carries what an appeal needs to name the decision.
        self.lines = (f"⛔ not sent: {item.name}", f"{_WHY.get(item.status, item.status)}: {item.reason}")
        self.update(Group(Text(self.lines[0], style="bold"), Text(self.lines[1])))

    @property
    def plain_text(self) -> str:
        """What the item says, without styling."""
        return "\n".join(self.lines)


class NotSentLog:
    """The not-sent items of each conversation while the app runs (bounded per conversation)."""

    MAX_PER_PEER = 200

    def __init__(self) -> None:
        self._items: dict[str, list[NotSent]] = {}

    def items(self, peer: str) -> list[NotSent]:
        return list(self._items.get(peer, []))

    async def record(self, conversation: Conversation, peer: str, name: str, outcome: SendOutcome) -> NotSent:
        """Keep a not-sent item for ``peer`` and show it if that conversation is open."""
        scan = outcome.scan
        item = NotSent(peer, name or "image", outcome.status, not_sent_reason(outcome), time.time(),
                       scan.snapshot_fingerprint if scan is not None else None)
        kept = self._items.setdefault(peer, [])
        kept.append(item)
        del kept[:-self.MAX_PER_PEER]
        if conversation.peer == peer:
            await conversation.add_item(NotSentItem(item))
        return item

    async def restore(self, conversation: Conversation, peer: str) -> None:
        """Show ``peer``'s not-sent items again after the conversation was (re)loaded."""
        for item in self.items(peer):
            await conversation.add_item(NotSentItem(item))
