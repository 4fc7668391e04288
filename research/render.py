"""Render :class:`~research.results.Results` to ``results.json``, ``report.md`` and ``report.html``.

This is the only research module that draws. Plots are made with matplotlib's Agg backend and embedded in
the HTML as base64 PNG ``data:`` URIs, galleries as base64 thumbnails, and the CSS is inline: the page loads
nothing from the network or the disk, so a reviewer can open it offline or receive it by mail. The same PNGs
are written under ``plots/`` for ``report.md``. A tiny inline script records on ``<body>`` how many images
decoded (``data-images-loaded`` / ``data-images-total``), which the headless-browser test reads.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from research.results import Gallery, Plot, Results, Section, Series, Table

__all__ = ["fmt_cell", "match_word", "render_plot", "thumbnail", "to_jsonable", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #333}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.summary{background:#f6f8fa;border-left:4px solid #0366d6;padding:.6em 1em}
figure{margin:1em 0}figcaption,.note{color:#555;font-size:.88em}
.pair{display:inline-block;vertical-align:top;margin:0 1em 1em 0;border:1px solid #ddd;padding:4px;
max-width:100%}.pair img{margin-right:4px;vertical-align:top}.meta{font-size:.8em;color:#555}
code{background:#f0f0f0;padding:0 3px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.getElementsByTagName('img'), ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var im = imgs[i];
    if (im.complete && im.naturalWidth > 0) { ok++; im.setAttribute('data-natural-width', im.naturalWidth); }
  }
  document.body.setAttribute('data-images-loaded', ok);
  document.body.setAttribute('data-images-total', imgs.length);
});
"""


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, tuples and bytes -> plain JSON values (NaN/inf -> None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


def fmt_cell(v: Any) -> str:
    """Format a table cell: floats to 4 significant digits, tiny ones in scientific notation."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if v == 0:
            return "0"
        if abs(v) < 1e-3 or abs(v) >= 1e6:
            return f"{v:.3g}"
        return f"{v:.4g}"
    if v is None:
        return "-"
    return str(v)


def match_word(verdict: bool | None) -> str:
    """A snapshot verdict in a report table: "match", "no match", or "n/a" when not measured."""
    return "n/a" if verdict is None else ("match" if verdict else "no match")


def _draw_hist(ax: Any, plot: Plot) -> None:
    import numpy as np

    allv = [v for s in plot.series for v in s.values]
    if isinstance(plot.bins, int) and allv:
        lo, hi = min(allv), max(allv)
        bins: Any = np.linspace(lo, hi if hi > lo else lo + 1, plot.bins + 1)
    else:
        bins = plot.bins
    for s in plot.series:
        if s.values:
            ax.hist(s.values, bins=bins, alpha=0.55, label=f"{s.label} (n={len(s.values)})")


def _error_bars(s: Series) -> Any:
    """(2, n) distances below and above each value (0 where there is no value, NaN), or None."""
    import numpy as np

    if s.low is None or s.high is None:
        return None
    below = [max(0.0, v - lo) for v, lo in zip(s.values, s.low, strict=True)]
    above = [max(0.0, hi - v) for v, hi in zip(s.values, s.high, strict=True)]
    return np.nan_to_num(np.array([below, above]), nan=0.0)


def _draw_bars(ax: Any, plot: Plot) -> None:
    import numpy as np

    cats = plot.categories or []
    n = max(1, len(plot.series))
    width = 0.8 / n
    xs = np.arange(len(cats))
    for i, s in enumerate(plot.series):
        pos = xs + (i - (n - 1) / 2) * width
        heights = np.nan_to_num(np.array(s.values, dtype=float), nan=0.0)
        ax.bar(pos, heights, width, yerr=_error_bars(s), capsize=2, label=s.label)
        for x, note in zip(pos, s.notes or [], strict=False):
            if note:
                ax.annotate(note, (x, 0), xytext=(0, 3), textcoords="offset points", rotation=90,
                            ha="center", va="bottom", fontsize=7, color="#555")
    ax.set_xticks(xs)
    many = len(cats) > 6
    ax.set_xticklabels(cats, rotation=60 if many else 0, ha="right" if many else "center", fontsize=8)


def _draw_lines(ax: Any, plot: Plot) -> None:
    for s in plot.series:
        x = s.x if s.x is not None else list(range(len(s.values)))
        ax.plot(x, s.values, marker="o", markersize=3, label=s.label)
        if s.low is not None and s.high is not None:
            ax.fill_between(x, s.low, s.high, alpha=0.15)


def _draw_annotations(ax: Any, plot: Plot) -> None:
    """Vertical lines, starred marks, log scales, title, labels, grid and legend."""
    for x, label in plot.vlines:
        ax.axvline(x, color="crimson", linestyle="--", linewidth=1)
        ax.annotate(
            label,
            (x, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            color="crimson",
            fontsize=8,
        )
    for x, y, label in plot.marks:
        ax.plot([x], [y], marker="*", markersize=14, color="gold", markeredgecolor="black", zorder=5)
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8)
    if plot.logy:
        ax.set_yscale("symlog" if plot.kind == "hist" else "log")
    if plot.logx:
        ax.set_xscale("log")
    ax.set_title(plot.title, fontsize=11)
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel(plot.ylabel)
    ax.grid(alpha=0.3)
    _handles, labels = ax.get_legend_handles_labels()
    if labels and (len(plot.series) > 1 or plot.kind == "hist"):
        ax.legend(fontsize=8, framealpha=0.85)
    if not any(len(s.values) for s in plot.series):
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")


def render_plot(plot: Plot) -> bytes:
    """Draw ``plot`` with matplotlib (Agg) and return PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    width = 7.5
    if plot.kind == "bar" and plot.categories:
        width = max(7.5, min(15.0, 2.5 + 0.09 * len(plot.categories) * max(1, len(plot.series))))
    fig, ax = plt.subplots(figsize=(width, 4.2), dpi=90)
    try:
        draw = {"hist": _draw_hist, "bar": _draw_bars}.get(plot.kind, _draw_lines)
        draw(ax, plot)
        _draw_annotations(ax, plot)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def thumbnail(ref: str | bytes, size: int = 220) -> bytes:
    """A PNG thumbnail (longest side ``size``) of a path or encoded bytes; a grey tile if unreadable."""
    from PIL import Image

    from scanner.errors import ImageError
    from scanner.image import check_decode_cost, open_image

    try:
        src = open_image(io.BytesIO(ref) if isinstance(ref, bytes) else ref, "thumbnail")
        with src:  # the image guard: allow-listed formats, pixel cap, memory estimate before decoding
            src.draft("RGB", (size, size))
            check_decode_cost(src, "thumbnail")
            src.thumbnail((size, size))
            im = src.convert("RGB")
    except (OSError, ValueError, ImageError):
        im = Image.new("RGB", (size, size // 2), (200, 200, 200))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "plot"
    name, i = base, 2
    while name in used:
        name, i = f"{base}-{i}", i + 1
    used.add(name)
    return name


def _md_table(t: Table) -> list[str]:
    out = [f"**{t.title}**", "", "| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    out += ["| " + " | ".join(fmt_cell(c).replace("|", "\\|") for c in row) + " |" for row in t.rows]
    if t.note:
        out += ["", f"_{t.note}_"]
    return [*out, ""]


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt_cell(c))}</td>" for c in row) + "</tr>" for row in t.rows
    )
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<h3>{html.escape(t.title)}</h3><table><tr>{head}</tr>{body}</table>{note}"


def _html_gallery(g: Gallery) -> str:
    parts = [f"<h3>{html.escape(g.title)}</h3>"]
    if g.note:
        parts.append(f'<p class="note">{html.escape(g.note)}</p>')
    for item in g.items:
        imgs = []
        for i, ref in enumerate(item.images):
            label = item.labels[i] if i < len(item.labels) else ""
            alt = html.escape(label or item.caption)
            src = _b64(thumbnail(ref, g.thumb))
            imgs.append(f'<img src="{src}" alt="{alt}" title="{html.escape(label)}">')
        caption = html.escape(item.caption)
        parts.append(f'<div class="pair">{"".join(imgs)}<div class="note">{caption}</div></div>')
    if not g.items:
        parts.append('<p class="note">(none)</p>')
    return "".join(parts)


def _write_json(results: Results, summary: list[str], out_dir: Path) -> Path:
    """``results.json``: command, title, summary, meta, data and the headline figures at the top level."""
    payload = {
        "command": results.command,
        "title": results.title,
        "summary": summary,
        "meta": results.meta,
        "data": results.data,
    }
    payload.update({k: v for k, v in results.headline.items() if k not in payload})
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(to_jsonable(payload), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return json_path


def _plot_parts(plot: Plot, name: str, plots_dir: Path) -> tuple[list[str], str]:
    """Render ``plot`` to ``plots_dir/name.png``: (its Markdown lines, its HTML figure)."""
    png = render_plot(plot)
    (plots_dir / f"{name}.png").write_bytes(png)
    md = [f"![{plot.title}](plots/{name}.png)", ""]
    if plot.caption:
        md += [f"_{plot.caption}_", ""]
    cap = f"<figcaption>{html.escape(plot.caption)}</figcaption>" if plot.caption else ""
    return md, f'<figure><img src="{_b64(png)}" alt="{html.escape(plot.title)}">{cap}</figure>'


def _section_parts(
    section: Section, command: str, plots_dir: Path, used: set[str]
) -> tuple[list[str], list[str]]:
    """One report section: (Markdown lines, HTML parts); its plots are written under ``plots_dir``."""
    md = [f"## {section.heading}", ""]
    body = [f"<h2>{html.escape(section.heading)}</h2>"]
    for para in section.text:
        md += [para, ""]
        body.append(f"<p>{html.escape(para)}</p>")
    for table in section.tables:
        md += _md_table(table)
        body.append(_html_table(table))
    for plot in section.plots:
        plot_md, plot_html = _plot_parts(plot, _slug(plot.name or f"{command}-{plot.title}", used), plots_dir)
        md += plot_md
        body.append(plot_html)
    for gallery in section.galleries:
        body.append(_html_gallery(gallery))
        md += [f"**{gallery.title}**: {len(gallery.items)} item(s), shown as images in report.html.", ""]
        if gallery.note:
            md += [f"_{gallery.note}_", ""]
        md += [f"- {item.caption}" for item in gallery.items] + [""]
    return md, body


def write_report(results: Results, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``results.json``, ``report.md``, ``report.html`` and ``plots/*.png`` under ``out``."""
    out_dir = Path(out)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()

    from research.readable import glossary_section, report_summary, unreadable_section

    summary = report_summary(results)
    extra = [s for s in (unreadable_section(results), glossary_section(results)) if s is not None]
    json_path = _write_json(results, summary, out_dir)

    md: list[str] = [f"# {results.title}", ""]
    md += [f"- {line}" for line in summary] + [""]
    body: list[str] = [f"<h1>{html.escape(results.title)}</h1>", '<div class="summary"><ul>']
    body += [f"<li>{html.escape(line)}</li>" for line in summary]
    body.append("</ul></div>")
    for section in [*results.sections, *extra]:
        section_md, section_html = _section_parts(section, results.command, plots_dir, used)
        md += section_md
        body += section_html
    meta_json = json.dumps(to_jsonable(results.meta), indent=1)
    md += ["## Settings", "", "```json", meta_json, "```", ""]
    body.append(f'<h2>Settings</h2><pre class="meta">{html.escape(meta_json)}</pre>')

    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(results.title)}</title><style>{_CSS}</style>"
        f"<script>{_SCRIPT}</script></head><body>{''.join(body)}</body></html>\n"
    )
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"json": json_path, "md": md_path, "html": html_path, "plots": plots_dir}
