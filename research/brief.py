"""`pocketscan research brief`: one self-contained page, in plain words, from other commands' results.

:func:`write_brief` reads the ``results.json`` of each ``--from`` folder (any of ``fpr``, ``robustness``,
``calibrate``, ``evade``, ``collide``, ``relay-view``, ``overhead``, ``tradeoffs``) and writes
``OUT/brief.html``: how often an innocent image and an innocent account are flagged at the configured
threshold (with the interval and the sample size behind each figure), how often edited copies are still
caught, what evasion costs, and what the relay and the authority learn. Every measured number is a link
to the run that produced it (a relative link to that run's ``report.html``, or its ``results.json``), so a
reader can check it. Constants of the method (95 %, thresholds) are marked apart. The page loads nothing:
inline CSS, inline SVG charts, no script source, no font, no external link; a small inline script only
records on ``<body>`` how many resources the page fetched (the headless-browser test reads it).
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Run", "load_runs", "write_brief"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:860px;margin:2em auto;
padding:0 1em;
color:#1a1a1a;line-height:1.55}h1{font-size:1.55em;border-bottom:2px solid #333}h2{margin-top:1.8em;
font-size:1.2em;border-bottom:1px solid #ccc}a.n{color:#0b5cad;font-weight:600;text-decoration:none;
border-bottom:1px dotted #0b5cad}.k{color:#444}.box{background:#f6f8fa;border-left:4px solid #0366d6;
padding:.5em 1em}.warn{background:#fff8e5;border-left:4px solid #d4a017;padding:.5em 1em}
table{border-collapse:collapse;font-size:.92em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f0f0f0}.src{font-size:.85em;color:#555}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var r = performance.getEntriesByType('resource'), ext = 0;
  for (var i = 0; i < r.length; i++) { if (r[i].name.indexOf('data:') !== 0) { ext++; } }
  document.body.setAttribute('data-resources', ext);
  document.body.setAttribute('data-number-links', document.querySelectorAll('a.n').length);
  document.body.setAttribute('data-svg', document.getElementsByTagName('svg').length);
});
"""


@dataclass
class Run:
    """One ``results.json`` and where it lives."""

    folder: Path
    command: str
    data: dict[str, Any]
    summary: list[str]
    meta: dict[str, Any]

    def link(self, out: Path) -> str:
        """Relative link from ``out`` to the run's report (or results.json when there is no report)."""
        target = self.folder / "report.html"
        if not target.exists():
            target = self.folder / "results.json"
        return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()


def load_runs(folders: list[str]) -> list[Run]:
    """Read ``results.json`` of each folder; one clear error for a folder without one."""
    runs = []
    for f in folders:
        path = Path(f) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{f}: no results.json (give folders written by other research commands)")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise ValueError(f"{path}: not a pocketscan results.json")
        runs.append(
            Run(
                Path(f),
                str(payload.get("command", "?")),
                payload["data"],
                [str(s) for s in payload.get("summary", [])][:20],
                payload.get("meta", {}) if isinstance(payload.get("meta"), dict) else {},
            )
        )
    if not runs:
        raise ValueError("give at least one --from DIR")
    return runs


def _fmt_p(p: float) -> str:
    """A probability in plain words: '0.18% (about 1 in 560)'."""
    if p <= 0:
        return "0"
    one_in = 1 / p
    pct = f"{100 * p:.2g}%" if p >= 1e-4 else f"{p:.2g}"
    return f"{pct} (about 1 in {_round_int(one_in)})" if one_in >= 2 else pct


def _int(x: Any) -> str:
    return f"{int(x):,}"


def _g(x: Any) -> str:
    return f"{float(x):.2g}"


def _pct(p: float, digits: int = 0) -> str:
    return f"{100 * float(p):.{digits}f}%"


def _span(r: dict[str, Any]) -> str:
    return f"{100 * r['wilson_low']:.0f}-{100 * r['wilson_high']:.0f}%"


def _db(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.1f} dB"


def _round_int(x: float) -> str:
    if not math.isfinite(x):
        return "infinity"
    if x >= 999.5e6:
        return f"{x / 1e9:.3g} billion"
    if x >= 1e6:
        return f"{x / 1e6:.3g} million"
    return f"{round(x, -max(0, len(str(int(x))) - 2)):,.0f}"


class _Page:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.body: list[str] = []
        self.sources: dict[str, Run] = {}

    def n(self, text: Any, run: Run, title: str = "") -> str:
        """A measured number, linked to its run."""
        self.sources[run.link(self.out)] = run
        t = f' title="{html.escape(title)}"' if title else ""
        return f'<a class="n" href="{html.escape(run.link(self.out))}"{t}>{html.escape(str(text))}</a>'

    @staticmethod
    def k(text: Any) -> str:
        """A constant of the method (not a measurement)."""
        return f'<span class="k">{html.escape(str(text))}</span>'

    def p(self, inner: str, cls: str = "claim") -> None:
        self.body.append(f'<p class="{cls}">{inner}</p>')

    def h2(self, text: str) -> None:
        self.body.append(f"<h2>{html.escape(text)}</h2>")


def _by(runs: list[Run], command: str) -> list[Run]:
    return [r for r in runs if r.command == command]


def _fpr_section(page: _Page, runs: list[Run]) -> None:
    page.h2("How often is an innocent image flagged?")
    fprs = _by(runs, "fpr")
    if not fprs:
        page.p("Not measured: run <code>pocketscan research fpr</code> and pass its folder.", "warn")
        return
    for run in fprs:
        for algo, a in run.data.get("algos", {}).items():
            n = int(a.get("benign_scanned", 0))
            snap = a.get("snapshot", {})
            if snap.get("available") and "per_query_dihedral" in snap:
                r = snap["per_query_dihedral"]
                how = (
                    f"the deployed matcher (the signed snapshot, {page.k('all 8 rotations and flips')}) "
                    f"at PDQ's distance rule of {page.k(a.get('default_threshold'))} bits"
                )
            else:
                r = next(
                    (
                        t["per_query_dihedral"]
                        for t in a.get("thresholds", [])
                        if t.get("threshold") == a.get("default_threshold")
                    ),
                    None,
                )
                how = f"the raw hash distance at most {page.k(a.get('default_threshold'))} bits"
            if r is None:
                continue
            k = int(r["k"])
            from research.stream import one_sided_upper

            upper = one_sided_upper(k, n)
            page.p(
                f"<b><code>{html.escape(algo)}</code></b>: of "
                f"{page.n(_int(n), run, 'benign images scanned')} innocent images "
                f"checked against a bank of {page.n(_int(a.get('bank_scannable', 0)), run)} hashes with "
                f"{how}, {page.n(k, run, 'false matches')} were flagged. "
                + (
                    f"Zero in {page.n(_int(n), run)} does not mean zero: with {page.k('95%')} confidence the "
                    "true rate is at most "
                    f"{page.n(_fmt_p(upper), run, 'exact one-sided Clopper-Pearson bound')} "
                    f"per image."
                    if k == 0
                    else f"That is {page.n(_fmt_p(k / n), run)} per image; with {page.k('95%')} confidence "
                    f"between {page.n(_fmt_p(r['cp_low']), run)} and {page.n(_fmt_p(r['cp_high']), run)} "
                    f"(Clopper-Pearson)."
                )
            )
            if run.data.get("run") and not run.data["run"].get("complete", True):
                info = run.data["run"]
                page.p(
                    f"This run stopped early: {page.n(_int(info['images_processed']), run)} of "
                    f"{page.n(_int(info['images_planned']), run)} planned images.",
                    "warn",
                )
            _account(page, run, algo, a)


def _account(page: _Page, run: Run, algo: str, a: dict[str, Any]) -> None:
    acct = a.get("account", {})
    rows = acct.get("rows", [])
    if not rows:
        return
    pick = [r for r in rows if r["threshold"] in (1, 30)]
    items = []
    for r in sorted(pick, key=lambda r: (r["images_per_year"], r["threshold"])):
        items.append(
            f"<tr><td>{page.n(_int(r['images_per_year']), run)} images a year, flagged at "
            f"{page.n(r['threshold'], run)} match(es)</td><td>{page.n(_g(r['prob_flagged_upper']), run)}"
            f"</td><td>{page.n(_round_int(r['expected_flagged_accounts_upper']), run)}</td></tr>"
        )
    page.body.append(
        f"<p class='claim'>Per account (<code>{html.escape(algo)}</code>), taking the per-image rate at "
        "its upper bound "
        f"{page.n(_g(acct.get('p_upper', 0)), run)} (the cautious reading):</p>"
        "<table><tr><th>an innocent account sending</th><th>chance of being flagged in a year</th>"
        f"<th>innocent accounts flagged per {page.k('1 billion')}</th></tr>{''.join(items)}</table>"
    )
    page.p(
        "These account figures assume every image is an independent trial. Real accounts resend the same "
        "pictures (forwards, saved memes), so one unlucky picture can repeat: read the upper-bound column as "
        "the central case, and remember that an attacker who can craft colliding images defeats any account "
        "threshold.",
        "warn",
    )


def _svg_bars(labels: list[str], values: list[float], lows: list[float], highs: list[float]) -> str:
    """A horizontal bar chart with interval whiskers, as inline SVG (0..1 scale)."""
    row, left, width = 18, 150, 420
    h = row * len(labels) + 30
    parts = [f'<svg width="{left + width + 60}" height="{h}" role="img">']
    for i, (lab, v, lo, hi) in enumerate(zip(labels, values, lows, highs, strict=True)):
        y = 10 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end">{html.escape(lab)}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{width * v:.1f}" height="{row - 6}" fill="#4a90d9"/>'
        )
        parts.append(
            f'<line x1="{left + width * lo:.1f}" x2="{left + width * hi:.1f}" y1="{y + row / 2}" '
            f'y2="{y + row / 2}" stroke="#222" stroke-width="1.5"/>'
        )
    for t in (0, 0.5, 1):
        x = left + width * t
        parts.append(f'<line x1="{x}" x2="{x}" y1="6" y2="{h - 18}" stroke="#bbb" stroke-dasharray="2,2"/>')
        parts.append(f'<text x="{x}" y="{h - 5}" font-size="10" text-anchor="middle">{int(t * 100)}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _robustness_section(page: _Page, runs: list[Run]) -> None:
    page.h2("Are edited copies still caught?")
    robs = _by(runs, "robustness")
    cals = _by(runs, "calibrate")
    if not robs and not cals:
        page.p("Not measured: run <code>pocketscan research robustness</code>.", "warn")
    for run in robs:
        for algo, a in run.data.get("algos", {}).items():
            per = a.get("per_transform", {})
            ranked = sorted(per.items(), key=lambda kv: kv[1]["recall_dihedral"]["p"])
            if not ranked:
                continue
            rows = "".join(
                f"<tr><td><code>{html.escape(t)}</code></td>"
                f"<td>{page.n(_pct(v['recall_dihedral']['p']), run)}</td>"
                f"<td>{page.n(_span(v['recall_dihedral']), run)}</td>"
                f"<td>{page.n(v['recall_dihedral']['n'], run)}</td></tr>"
                for t, v in ranked
            )
            worst = ", ".join(f"<code>{html.escape(t)}</code>" for t, _ in ranked[:3])
            page.p(
                f"<b><code>{html.escape(algo)}</code></b> at {page.k(a.get('threshold'))} bits: the edits "
                "it misses most are "
                f"{worst}. Share of edited copies still caught (recall), with the {page.k('95%')} interval "
                "and "
                "the number of images behind it:"
            )
            page.body.append(
                "<table><tr><th>edit</th><th>caught</th><th>interval</th><th>images</th></tr>"
                + rows
                + "</table>"
            )
            page.body.append(
                _svg_bars(
                    [t for t, _ in ranked],
                    [v["recall_dihedral"]["p"] for _, v in ranked],
                    [v["recall_dihedral"]["wilson_low"] for _, v in ranked],
                    [v["recall_dihedral"]["wilson_high"] for _, v in ranked],
                )
            )
    for run in cals:
        page.p(
            f"Thresholds chosen on one set of images and checked on a different set "
            f"({html.escape(run.data.get('how', ''))}):",
            "note",
        )
        for algo, a in run.data.get("algos", {}).items():
            fixed, prec = a["rules"]["fixed"]["test"], a["rules"]["precision"]["test"]
            page.p(
                f"<b><code>{html.escape(algo)}</code></b>: with its fixed rule "
                f"({page.n(fixed['threshold'], run)} bits) it caught "
                f"{page.n(_pct(fixed['recall']['p']), run)} of {page.n(fixed['recall']['n'], run)} edited "
                f"test copies; the threshold chosen on the calibration images for {page.k('99.99%')} "
                "precision "
                f"({page.n(prec['threshold'], run)} bits) caught {page.n(_pct(prec['recall']['p']), run)} "
                f"at a test precision of {page.n(_pct(prec['precision'], 2), run)}."
            )


def _attacks_section(page: _Page, runs: list[Run]) -> None:
    page.h2("What does evading the scanner cost?")
    ev, co = _by(runs, "evade"), _by(runs, "collide")
    if not ev and not co:
        page.p(
            "Not measured: run <code>pocketscan research attacks evade</code> and <code>collide</code>.",
            "warn",
        )
    for run in ev:
        for algo, a in run.data.get("algos", {}).items():
            s = a.get("success", {})
            page.p(
                f"<b><code>{html.escape(algo)}</code></b>: an attacker who can query the hash removed the "
                "match from "
                f"{page.n(s.get('k', 0), run)} of {page.n(s.get('n', 0), run)} images "
                f"({html.escape(str(a.get('method', '')))}), with a median of "
                f"{page.n(a.get('queries', {}).get('p50', 'n/a'), run)} hash computations per image and a "
                "median "
                f"image quality of {page.n(_db(a.get('median_psnr')), run)} PSNR "
                f"({page.k('30 dB')} and above is hard to see)."
            )
    for run in co:
        for algo, a in run.data.get("algos", {}).items():
            res = a.get("results", [])
            ok = sum(1 for r in res if r.get("success"))
            page.p(
                f"<b><code>{html.escape(algo)}</code></b>: crafting an innocent-looking image that the "
                "scanner takes for a bank "
                f"image succeeded for {page.n(ok, run)} of {page.n(len(res), run)} source images. Anyone "
                "who can "
                "do this can get innocent people flagged, whatever the account threshold."
            )


def _learn_section(page: _Page, runs: list[Run]) -> None:
    page.h2("What do the relay and the authority learn?")
    rv = _by(runs, "relay-view")
    if not rv:
        page.p(
            "The relay was not measured: run <code>pocketscan research relay-view</code> on a relay log.",
            "warn",
        )
    for run in rv:
        d = run.data
        leaks = d.get("content_fields_found", [])
        page.p(
            f"The relay operator's log of {page.n(d.get('events', 0), run)} events shows who talked to whom "
            f"({page.n(len(d.get('accounts', {})), run)} accounts, {page.n(len(d.get('edges', [])), run)} "
            f"sender-recipient pairs), when, and how large each message and attachment was "
            f"({page.n(len(d.get('attachments_inferred', [])), run)} attachments inferred). "
            + (
                "It holds no message text, no image, no hash and no scan result."
                if not leaks
                else f"WARNING: it has content-like fields: {html.escape(', '.join(leaks))}."
            )
        )
        if d.get("messages_to_authorities"):
            page.p(
                f"{page.n(d['messages_to_authorities'], run)} messages went to an authority account: the "
                "traffic itself shows that something was reported.",
                "warn",
            )
    fprs = _by(runs, "fpr")
    for run in fprs:
        for algo, a in run.data.get("algos", {}).items():
            rows = [r for r in a.get("account", {}).get("rows", []) if r["threshold"] == 1]
            if not rows:
                continue
            # the row nearest 10,000 images a year
            r = min(rows, key=lambda r: abs(math.log10(max(1, r["images_per_year"])) - 4))
            page.p(
                f"The authority learns only what is reported to it. Under a report-on-first-match policy "
                f"(<code>{html.escape(algo)}</code>), its reviewers would receive reports about "
                f"{page.n(_round_int(r['expected_flagged_accounts_upper']), run)} innocent accounts a year "
                "per "
                f"{page.k('1 billion')} accounts sending {page.n(_int(r['images_per_year']), run)} images "
                "each "
                "(the cautious reading above): each such report shows an innocent person's private picture "
                "to "
                "a stranger."
            )
            break
    others = [
        r
        for r in runs
        if r.command not in {"fpr", "robustness", "calibrate", "evade", "collide", "relay-view"}
    ]
    for run in others:
        page.p(
            f"Also given: <b>{html.escape(run.command)}</b> ({page.n('report', run)}): "
            + html.escape(" ".join(run.summary[:2])),
            "note",
        )


def write_brief(runs: list[Run], out: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write ``out/brief.html`` (self-contained) and ``out/brief.json`` (the runs it cites)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = _Page(out_dir)
    _fpr_section(page, runs)
    _robustness_section(page, runs)
    _attacks_section(page, runs)
    _learn_section(page, runs)
    heading = title or "Client-side scanning, measured: a one-page brief"
    intro = (
        "<div class='box'>Each blue number links to the run that measured it. Intervals are "
        f"{page.k('95%')} intervals; when nothing was observed, the page gives the largest rate the data "
        "still allows, never zero. Figures hold for the images measured, not for all images.</div>"
    )
    sources = "".join(
        f"<li><a href='{html.escape(link)}'>{html.escape(link)}</a>: {html.escape(run.command)}"
        f"{' (seed ' + html.escape(str(run.meta.get('seed'))) + ')' if 'seed' in run.meta else ''}</li>"
        for link, run in page.sources.items()
    )
    doc = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(heading)}</title><style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
        f"<h1>{html.escape(heading)}</h1>{intro}{''.join(page.body)}"
        f"<h2>Runs behind this page</h2><ul class='src'>{sources}</ul></body></html>\n"
    )
    path = out_dir / "brief.html"
    path.write_text(doc, encoding="utf-8")
    (out_dir / "brief.json").write_text(
        json.dumps(
            {
                "title": heading,
                "runs": [
                    {"link": k, "command": r.command, "folder": str(r.folder)}
                    for k, r in page.sources.items()
                ],
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    return path
