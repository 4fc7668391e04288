"""The value every evaluation returns: numbers plus a description of how to show them.

An eval's ``run(cfg, seed) -> Results`` computes; it never draws. :class:`Plot` holds the data of a chart
(histogram, bars with intervals, lines) and :class:`Gallery` holds image pairs (paths or in-memory PNG bytes);
``research.render`` turns them into PNGs embedded in ``report.html``, plus ``report.md`` and ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Gallery", "GalleryItem", "Plot", "Results", "Section", "Series", "Table"]


@dataclass
class Table:
    """A table: ``rows`` are lists of cells (numbers are formatted by the renderer)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Series:
    """One data series of a plot.

    For ``hist``: ``values`` are the samples. For ``bar``: ``values`` are bar heights over the plot's
    ``categories`` and ``low``/``high`` optional interval ends. For ``line``: ``x`` and ``values``.
    """

    label: str
    values: list[float]
    x: list[float] | None = None
    low: list[float] | None = None
    high: list[float] | None = None
    notes: list[str] | None = None
    """For ``bar``: a word per category drawn at the bar (e.g. why there is no bar: nothing was scanned)."""


@dataclass
class Plot:
    """Data of a chart; ``vlines`` are (x, label) reference lines such as the match threshold."""

    kind: Literal["hist", "bar", "line"]
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    categories: list[str] | None = None
    vlines: list[tuple[float, str]] = field(default_factory=list)
    marks: list[tuple[float, float, str]] = field(default_factory=list)
    logy: bool = False
    logx: bool = False
    bins: int | list[float] = 32
    caption: str = ""
    name: str = ""


@dataclass
class GalleryItem:
    """Images shown side by side with a caption; each image is a file path or PNG/JPEG bytes."""

    caption: str
    images: list[str | bytes]
    labels: list[str] = field(default_factory=list)


@dataclass
class Gallery:
    title: str
    items: list[GalleryItem]
    note: str = ""
    thumb: int = 220


@dataclass
class Section:
    heading: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    galleries: list[Gallery] = field(default_factory=list)


@dataclass
class Results:
    """What an evaluation measured.

    Attributes:
        command: e.g. ``"fpr"``.
        title: the report title.
        summary: a few lines printed on the terminal and placed at the top of the report.
        data: JSON-able numbers, written to ``results.json``.
        sections: the report body.
        meta: settings, seed, versions, timings (also in ``results.json``).
        headline: key figures also written at the top level of ``results.json`` (a command's contract).
    """

    command: str
    title: str
    summary: list[str]
    data: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
