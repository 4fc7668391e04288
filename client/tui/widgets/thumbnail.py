"""Inline image thumbnails drawn with half blocks (works in every 256/truecolor terminal).

Each character cell shows two pixels: the upper half block ``▀`` in the top pixel's colour
over a background of the bottom pixel's colour.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

__all__ = ["HalfBlockImage", "load_thumbnail_pixels"]


def load_thumbnail_pixels(path: Path, *, width: int, max_rows: int) -> list[list[tuple[int, int, int]]]:
    """Decode ``path`` cheaply (JPEG draft mode) and return rows of RGB pixels (2 rows per cell)."""
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.draft("RGB", (width * 4, max_rows * 8))
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
    """A Rich renderable of an image file; falls back to a text label if it cannot be decoded."""

    def __init__(self, path: Path, *, width: int = 24, max_rows: int = 8) -> None:
        self.path = path
        try:
            self.pixels: list[list[tuple[int, int, int]]] | None = load_thumbnail_pixels(
                path, width=width, max_rows=max_rows
            )
        except Exception:  # a thumbnail must never crash the conversation
            self.pixels = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.pixels:
            yield Segment(f"[image {self.path.name}]")
            yield Segment.line()
            return
        for top, bottom in zip(self.pixels[0::2], self.pixels[1::2], strict=False):
            for (r1, g1, b1), (r2, g2, b2) in zip(top, bottom, strict=False):
                yield Segment("▀", Style(color=f"rgb({r1},{g1},{b1})", bgcolor=f"rgb({r2},{g2},{b2})"))
            yield Segment.line()
