"""A received image the on-device classifier rated sensitive (setting ``blur``/``both``): shown blurred
until the reader reveals it (Enter or a click on the focused bubble, or ``ctrl+e`` for the newest one).

Only the thumbnail shown on screen is blurred; the stored file is never touched.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual.binding import Binding, BindingType

from client.interfaces import MessageView
from client.tui.widgets.conversation import ImageLoader, MessageBubble, _read_path
from client.tui.widgets.thumbnail import HalfBlockImage, Pixels

__all__ = ["BlurredImage", "SensitiveImageBubble", "bubble_for"]

NOTICE = "⚠ May be sensitive (rated on this device). ctrl+e, or click, to reveal."
BLUR_CELLS = 6
"""The thumbnail is averaged over blocks of this many pixels a side before it is drawn: shapes and
colours remain, details do not."""


class BlurredImage(HalfBlockImage):
    """:class:`HalfBlockImage` with its pixels averaged over ``BLUR_CELLS``-pixel blocks, then smoothed."""

    def __init__(self, pixels: Pixels | None = None, *, label: str = "image") -> None:
        super().__init__(_blur(pixels) if pixels else None, label=label)


def _blur(rows: list[list[tuple[int, int, int]]]) -> list[list[tuple[int, int, int]]]:
    from PIL import Image, ImageFilter

    height, width = len(rows), len(rows[0])
    img = Image.new("RGB", (width, height))
    img.putdata([px for row in rows for px in row])
    small = img.resize((max(1, width // BLUR_CELLS), max(1, height // BLUR_CELLS)), Image.Resampling.BOX)
    smooth = small.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(2))
    raw = smooth.tobytes()
    flat = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    return [flat[r * width:(r + 1) * width] for r in range(height)]


class SensitiveImageBubble(MessageBubble):
    """A message bubble whose image stays blurred until revealed (focusable: Tab reaches it)."""

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "reveal", "Reveal image")]
    DEFAULT_CSS = """
    SensitiveImageBubble.blurred { border-left: thick $warning; }
    SensitiveImageBubble:focus { background: $boost; }
    """

    def __init__(self, message: MessageView, loader: ImageLoader = _read_path) -> None:
        self.revealed = False
        self._blurred: HalfBlockImage | None = BlurredImage(label="loading image…") if message.path else None
        super().__init__(message, loader)
        self.add_class("blurred")

    def _thumbnail_ready(self, pixels: Pixels | None, label: str) -> None:
        if self._blurred is not None:
            self._blurred = BlurredImage(pixels, label=label[:120])  # blurred off the stored pixels
        super()._thumbnail_ready(pixels, label)

    def refresh_content(self) -> None:
        if self.revealed or self._blurred is None:
            super().refresh_content()
            return
        clear, shown = self._thumb, self.message
        self._thumb, self.message = self._blurred, replace(shown, text=NOTICE)
        try:
            super().refresh_content()
        finally:
            self._thumb, self.message = clear, shown

    def action_reveal(self) -> None:
        """Show the image as it is (for this screen; the file was never changed)."""
        if not self.revealed:
            self.revealed = True
            self.remove_class("blurred")
            self.refresh_content()

    def on_click(self) -> None:
        self.action_reveal()


def bubble_for(message: MessageView, loader: ImageLoader = _read_path) -> MessageBubble:
    """A blurred bubble for a received image rated sensitive, else the ordinary bubble."""
    if message.kind == "image" and message.direction == "in" and message.sensitive and message.path:
        return SensitiveImageBubble(message, loader)
    return MessageBubble(message, loader)
