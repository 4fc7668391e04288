"""Inline image thumbnails drawn with half blocks (works in every 256/truecolor terminal).

Each character cell shows two pixels: the upper half block ``▀`` in the top pixel's colour
over a background of the bottom pixel's colour. Images come decrypted in memory (sealed media)
and are decoded through the scanner's image guard (format allow-list, pixel cap, memory
estimate), off the UI thread (``client.tui.widgets.conversation``).
"""

from __future__ import annotations

import io

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

__all__ = ["HalfBlockImage", "load_thumbnail_pixels"]

Pixels = list[list[tuple[int, int, int]]]


def load_thumbnail_pixels(data: bytes, *, width: int, max_rows: int) -> Pixels:
    """Decode image bytes cheaply (JPEG draft, integer reduce) into rows of RGB pixels (2 rows per cell).

    Raises ``scanner.errors.ImageError`` for anything the image guard refuses.
    """
    from PIL import Image, ImageOps

    from scanner.image import check_decode_cost, open_image

    box = (max(1, width) * 4, max(2, max_rows) * 8)
    with open_image(io.BytesIO(data), "thumbnail") as opened:
        opened.draft("RGB", box)
        factor = max(1, min(opened.width // box[0], opened.height // box[1]))
        check_decode_cost(opened, "thumbnail", out_bands=3, reduce=factor)
        opened.thumbnail(box)
        img = ImageOps.exif_transpose(opened).convert("RGB")
    w, h = img.size
    cols = max(1, width)
    rows = max(2, min(max_rows * 2, round(h / w * cols / 1.0)))
    rows -= rows % 2
    small = img.resize((cols, rows), Image.Resampling.BILINEAR)
    raw = small.tobytes()
    pixels = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    return [pixels[r * cols:(r + 1) * cols] for r in range(rows)]


class HalfBlockImage:
    """A Rich renderable of decoded thumbnail pixels; a text label while loading or if refused."""

    def __init__(self, pixels: Pixels | None = None, *, label: str = "image") -> None:
        self.pixels = pixels
        self.label = label

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.pixels:
            yield Segment(f"[{self.label}]")
            yield Segment.line()
            return
        for top, bottom in zip(self.pixels[0::2], self.pixels[1::2], strict=False):
            for (r1, g1, b1), (r2, g2, b2) in zip(top, bottom, strict=False):
                yield Segment("▀", Style(color=f"rgb({r1},{g1},{b1})", bgcolor=f"rgb({r2},{g2},{b2})"))
            yield Segment.line()
