"""The conversation view: message bubbles with delivery state and inline thumbnails.

The view is anchored: it follows new messages while the reader is at the bottom and stays
put once they scroll up (Textual's ``anchor``).

Nothing a peer sends becomes a widget id: a bubble's id is a digest of the message id
(:func:`bubble_id`). Thumbnails are decrypted and decoded in a worker thread, never on the UI thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from client.interfaces import MessageView
from client.tui.widgets.thumbnail import HalfBlockImage, load_thumbnail_pixels

__all__ = ["Conversation", "ImageLoader", "MessageBubble", "bubble_id"]

ImageLoader = Callable[[MessageView], "bytes | None"]
"""Returns a message's image bytes, decrypted in memory (runs in a worker thread)."""


def bubble_id(message_id: str) -> str:
    """The widget id of a message's bubble: a digest, so that no peer-chosen text becomes an id."""
    return "msg-" + hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def _read_path(message: MessageView) -> bytes | None:
    return Path(message.path).read_bytes() if message.path else None

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

    def __init__(self, message: MessageView, loader: ImageLoader = _read_path) -> None:
        super().__init__(id=bubble_id(message.id), classes=f"bubble {message.direction}")
        self.message = message
        self._loader = loader
        self._thumb: HalfBlockImage | None = None
        if message.kind == "image" and message.path:
            self._thumb = HalfBlockImage(label="loading image…")
        self.refresh_content()

    def on_mount(self) -> None:
        if self._thumb is not None:
            self.run_worker(self._decode_thumbnail, thread=True, group="thumbnails")

    def _decode_thumbnail(self) -> None:
        """Worker thread: decrypt and decode through the image guard; the UI thread only draws."""
        try:
            data = self._loader(self.message)
            pixels = None if data is None else load_thumbnail_pixels(data, width=24, max_rows=8)
            label = "image unavailable" if data is None else "image"
        except Exception as exc:  # a thumbnail must never crash the conversation
            pixels, label = None, f"image not shown: {getattr(exc, 'reason', None) or type(exc).__name__}"
        self.app.call_from_thread(self._thumbnail_ready, pixels, label)

    def _thumbnail_ready(self, pixels: list[list[tuple[int, int, int]]] | None, label: str) -> None:
        self._thumb = HalfBlockImage(pixels, label=label[:120])
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
        if m.kind == "text" and m.state == "failed" and m.direction == "in":
            parts.append(Text(f"✗ {m.text}", style="italic"))  # "a message from X could not be shown: ..."
        elif m.kind == "text":
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

    def __init__(self, *, id: str | None = None, loader: ImageLoader = _read_path) -> None:
        super().__init__(id=id)
        self.peer: str | None = None
        self.loader = loader
        self._bubbles: dict[str, MessageBubble] = {}

    def on_mount(self) -> None:
        self.anchor()

    async def show(self, peer: str | None, messages: list[MessageView], title: str = "") -> None:
        self.peer = peer
        self.border_title = title or "No conversation"
        await self.remove_children()
        self._bubbles = {}
        bubbles = [_bubble(m, self.loader) for m in messages]
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
        bubble = _bubble(message, self.loader)
        self._bubbles[message.id] = bubble
        await self.mount(bubble)

    async def add_item(self, widget: Static) -> None:
        """Append a non-message item (e.g. an image that was not sent) to the open conversation."""
        for hint in self.query(".empty-hint"):
            await hint.remove()
        await self.mount(widget)

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


def _bubble(message: MessageView, loader: ImageLoader) -> MessageBubble:
    from client.tui.widgets.sensitive_image import bubble_for

    return bubble_for(message, loader)
