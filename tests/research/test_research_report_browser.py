"""A reviewer opens report.html with no network and sees every plot (checked in headless Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from research.render import write_report
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table
from tests.research.browserkit import dump_dom, needs_chromium


def _report(tmp_path: Path, samples_dir: Path) -> Path:
    sec = Section("Everything a report can hold", text=["A paragraph with <angle> & ampersand."])
    sec.tables.append(Table("A table", ["name", "rate"], [["x", 0.5], ["y", 1e-7]]))
    sec.plots.append(
        Plot(
            "hist",
            "Histogram",
            "bits",
            "count",
            [Series("a", [1, 2, 2, 3, 31, 40])],
            vlines=[(31, "threshold")],
        )
    )
    sec.plots.append(
        Plot(
            "bar",
            "Bars with intervals",
            "transform",
            "recall",
            [Series("pdq", [1.0, 0.5], low=[0.9, 0.3], high=[1.0, 0.7])],
            categories=["noop", "crop"],
        )
    )
    sec.plots.append(
        Plot(
            "line",
            "Lines",
            "MB",
            "recall",
            [Series("v=2", [0.2, 0.6], x=[0.1, 1.0])],
            marks=[(1.0, 0.6, "default")],
            logx=True,
        )
    )
    sec.galleries.append(
        Gallery(
            "Pairs",
            [
                GalleryItem(
                    "pair", [str(samples_dir / "chelsea.jpg"), str(samples_dir / "coffee.jpg")], ["a", "b"]
                )
            ],
        )
    )
    res = Results("test", "Report test", ["one line"], {"x": 1}, [sec], {"seed": 0})
    return write_report(res, tmp_path)["html"]


def _loaded_in_chromium(html: Path, profile: Path) -> tuple[int, int, list[int]]:
    """(images decoded, images in the page, natural widths) after Chromium loads ``html`` offline."""
    body, dom = dump_dom(html, profile)
    loaded = re.search(r'data-images-loaded="(\d+)"', body)
    total = re.search(r'data-images-total="(\d+)"', body)
    assert loaded and total, f"the page script did not run: {body}"
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    return int(loaded.group(1)), int(total.group(1)), widths




@needs_chromium
def test_every_image_decodes_offline_in_chromium(tmp_path: Path, samples_dir: Path) -> None:
    html = _report(tmp_path / "report", samples_dir)
    expected = len(re.findall(r"<img ", html.read_text(encoding="utf-8")))
    assert expected == 5  # 3 plots + 2 gallery images
    loaded, total, widths = _loaded_in_chromium(html, tmp_path / "profile")
    assert total == expected
    assert loaded == expected, "some images did not decode"
    assert len(widths) == expected and all(w > 0 for w in widths)


@needs_chromium
def test_a_real_fpr_report_shows_every_plot_offline(tmp_path: Path, fpr_self: Path) -> None:
    html = fpr_self / "report.html"
    expected = len(re.findall(r"<img ", html.read_text(encoding="utf-8")))
    assert expected >= 6  # plots plus false-match thumbnail pairs
    loaded, total, _widths = _loaded_in_chromium(html, tmp_path / "profile")
    assert loaded == total == expected
