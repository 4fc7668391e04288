"""The conversation view: message bubbles with delivery state and inline thumbnails.

The view is anchored: it follows new messages while the reader is at the bottom and stays
put once they scroll up (Textual's ``anchor``).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from client.interfaces import MessageView
from client.tui.widgets.thumbnail import HalfBlockImage

__all__ = ["Conversation", "MessageBubble"]

_STATE_MARK = {
    "sending": "… sending",
    "sent": "✓ sent",
    "delivered": "✓✓ delivered",
    "failed": "✗ failed",
    "blocked": "⛔ not sent",
    "received": "",
    "waiting": "⏳ waiting (relay quota; retrying)",
}


class MessageBubble(Static):
    """One message."""

    def __init__(self, message: MessageView) -> None:
        super().__init__(id=f"msg-{message.id}", classes=f"bubble {message.direction}")
        self.message = message
        self._thumb: HalfBlockImage | None = None
        if message.kind == "image" and message.path:
            self._thumb = HalfBlockImage(Path(message.path))
        self.refresh_content()

    def update_state(self, message: MessageView) -> None:
        self.message = message
        self.refresh_content()

    def refresh_content(self) -> None:
        m = self.message
        stamp = time.strftime("%H:%M", time.localtime(m.sent_at)) if m.sent_at else ""
        meta = Text(f"{stamp} {_STATE_MARK.get(m.state, m.state) if m.direction == 'out' else ''}".rstrip(),
                    style="dim")
        parts: list[object] = []
        if m.kind == "text":
            parts.append(Text(m.text))
        else:
            label = m.label or (Path(m.path).name if m.path else "image")
            if m.text:
                parts.append(Text(m.text, style="italic"))
            verdict = f" · scan: {m.verdict}" if m.verdict else ""
            parts.append(Text(f"▣ {label}{verdict}", style="bold"))
            if self._thumb is not None:
                parts.append(self._thumb)
        parts.append(meta)
        self.update(Group(*parts))  # type: ignore[arg-type]


class Conversation(VerticalScroll):
    """Scrollback of one conversation."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.peer: str | None = None
        self._bubbles: dict[str, MessageBubble] = {}

    def on_mount(self) -> None:
        self.anchor()

    async def show(self, peer: str | None, messages: list[MessageView], title: str = "") -> None:
        self.peer = peer
        self.border_title = title or "No conversation"
        await self.remove_children()
        self._bubbles = {}
        bubbles = [_bubble(m) for m in messages]
        for bubble in bubbles:
            self._bubbles[bubble.message.id] = bubble
        if bubbles:
            await self.mount_all(bubbles)
        else:
            await self.mount(Static("No messages yet. Type below; /image PATH sends a picture.",
                                    classes="empty-hint"))
        self.anchor()
        self.scroll_end(animate=False)

    async def add(self, message: MessageView) -> None:
        if message.peer != self.peer:
            return
        if message.id in self._bubbles:
            self._bubbles[message.id].update_state(message)
            return
        for hint in self.query(".empty-hint"):
            await hint.remove()
        bubble = _bubble(message)
        self._bubbles[message.id] = bubble
        await self.mount(bubble)

    def set_state(self, message_id: str, state: str) -> None:
        bubble = self._bubbles.get(message_id)
        if bubble is not None:
            from dataclasses import replace

            bubble.update_state(replace(bubble.message, state=state))  # type: ignore[arg-type]

    def reveal_last(self) -> bool:
        """Reveal the newest blurred (sensitive) image of this conversation; False if there is none."""
        from client.tui.widgets.sensitive_image import SensitiveImageBubble

        for bubble in reversed(list(self._bubbles.values())):
            if isinstance(bubble, SensitiveImageBubble) and not bubble.revealed:
                bubble.action_reveal()
                bubble.scroll_visible(animate=False)
                return True
        return False


def _bubble(message: MessageView) -> MessageBubble:
    from client.tui.widgets.sensitive_image import bubble_for

    return bubble_for(message)
