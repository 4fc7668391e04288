"""What the relay operator learned from a session, and what it did not, read from its metadata log.

The relay's optional metadata log (``pocketscan relay --metadata-log FILE``, :mod:`relay.metadata`) is one
JSON object per line with a time, an event and ids/sizes/counts. This evaluation reads it the way a curious
operator would and reports:

* **learned**: every account and the addresses it connected from, when it was online; the social graph
  (who sent to whom, how often, how many bytes, when); who fetched whose prekeys (a new conversation is
  starting); attachment uploads and downloads with their (padded) sizes, and which send each upload most
  likely belongs to (same account, within a few seconds), i.e. "A sent B an image of about N KB"; which
  client fetched which snapshot version, and who published it (the authority);
* **not learned**: the field names present in the log are listed and checked against names that would carry
  contents (text, image bytes, hashes, match results); message contents and scan verdicts never reach the
  relay, and a blocked image leaves no trace at all. Traffic to an authority account is flagged, since a
  "report" policy would make matches visible as such traffic.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from research.evals.common import run_meta
from research.results import Plot, Results, Section, Series, Table

__all__ = ["CONTENT_FIELDS", "RelayView", "RelayViewConfig", "analyse", "read_log", "run"]

CONTENT_FIELDS: frozenset[str] = frozenset(
    {
        "text",
        "body",
        "plaintext",
        "content",
        "message",
        "env",
        "envelope",
        "data",
        "image",
        "blob_data",
        "hash",
        "pdq",
        "phash",
        "verdict",
        "match",
        "matched",
        "votes",
        "quality",
        "key",
        "keys",
        "ciphertext",
    }
)
"""Field names that would reveal contents or scan results if a relay ever logged them."""

MAX_LOG_BYTES = 2 * 1024**3
ATTACHMENT_WINDOW_S = 5.0


@dataclass
class RelayViewConfig:
    log: str
    out: str
    quiet: bool = True


def _short(account: str | None) -> str:
    return (account or "?")[:8]


def read_log(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The log's events sorted by time, and the numbers of the lines that are not events."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metadata log")
    if path.stat().st_size > MAX_LOG_BYTES:
        raise ValueError(f"{path}: larger than {MAX_LOG_BYTES} bytes; split it first")
    events: list[dict[str, Any]] = []
    bad_lines: list[int] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                bad_lines.append(lineno)
                continue
            if not isinstance(ev, dict) or "event" not in ev or not isinstance(ev.get("ts"), (int, float)):
                bad_lines.append(lineno)
                continue
            events.append(ev)
    if not events:
        raise ValueError(f"{path}: no metadata events found ({len(bad_lines)} unreadable lines)")
    events.sort(key=lambda e: e["ts"])
    return events, bad_lines


def accounts_seen(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per account: addresses, sessions, first and last time seen, whether an authority, events."""
    accounts: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "addresses": set(),
            "sessions": 0,
            "first": None,
            "last": None,
            "authority": False,
            "events": 0,
        }
    )
    for e in events:
        for key in ("account", "from", "to", "of"):
            acc = e.get(key)
            if isinstance(acc, str):
                a = accounts[acc]
                a["first"] = e["ts"] if a["first"] is None else a["first"]
                a["last"] = e["ts"]
                a["events"] += 1
        if e["event"] == "auth":
            a = accounts[e.get("account", "?")]
            a["sessions"] += 1
            if e.get("address"):
                a["addresses"].add(str(e["address"]))
            a["authority"] = a["authority"] or bool(e.get("authority"))
    return accounts


def social_graph(sends: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (sender, recipient): messages, bytes, first and last time."""
    edges: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "bytes": 0, "first": None, "last": None}
    )
    for e in sends:
        ed = edges[(e.get("from", "?"), e.get("to", "?"))]
        ed["count"] += 1
        ed["bytes"] += int(e.get("size", 0) or 0)
        ed["first"] = e["ts"] if ed["first"] is None else ed["first"]
        ed["last"] = e["ts"]
    return edges


def infer_attachments(puts: list[dict[str, Any]], sends: list[dict[str, Any]],
                      t_start: float) -> list[dict[str, Any]]:
    """An upload followed shortly by a send from the same account: "A sent B an attachment of N bytes"."""
    inferred = []
    for pe in puts:
        nxt = next(
            (
                s
                for s in sends
                if s.get("from") == pe.get("account") and 0 <= s["ts"] - pe["ts"] <= ATTACHMENT_WINDOW_S
            ),
            None,
        )
        if nxt is not None:
            inferred.append(
                {
                    "from": pe.get("account"),
                    "to": nxt.get("to"),
                    "blob_bytes": pe.get("size"),
                    "at": pe["ts"] - t_start,
                }
            )
    return inferred


@dataclass
class RelayView:
    """What the operator can read off the log (the values of ``results.json``'s ``data``)."""

    events: list[dict[str, Any]]
    bad_lines: list[int]
    fields: Counter[str]
    kinds: Counter[str]
    leaks: list[str]
    accounts: dict[str, dict[str, Any]]
    authorities: set[str]
    sends: list[dict[str, Any]]
    puts: list[dict[str, Any]]
    edges: dict[tuple[str, str], dict[str, Any]]
    inferred: list[dict[str, Any]]
    prekey_lookups: list[tuple[Any, Any]] = field(default_factory=list)
    snap_gets: list[tuple[Any, Any]] = field(default_factory=list)
    snap_pubs: list[tuple[Any, Any, Any]] = field(default_factory=list)
    to_authority: list[dict[str, Any]] = field(default_factory=list)

    @property
    def t_start(self) -> float:
        """The first event's time (an int or a float, as logged)."""
        return self.events[0]["ts"]


def analyse(events: list[dict[str, Any]], bad_lines: list[int]) -> RelayView:
    """Everything the report shows, from the time-sorted events."""
    t_start = events[0]["ts"]
    fields = Counter(k for e in events for k in e)
    accounts = accounts_seen(events)
    sends = [e for e in events if e["event"] == "send"]
    puts = [e for e in events if e["event"] == "blob.put"]
    authorities = {acc for acc, a in accounts.items() if a["authority"]}
    return RelayView(
        events=events,
        bad_lines=bad_lines,
        fields=fields,
        kinds=Counter(e["event"] for e in events),
        leaks=sorted(set(fields) & CONTENT_FIELDS),
        accounts=accounts,
        authorities=authorities,
        sends=sends,
        puts=puts,
        edges=social_graph(sends),
        inferred=infer_attachments(puts, sends, t_start),
        prekey_lookups=[(e.get("from"), e.get("of")) for e in events if e["event"] == "prekeys.get"],
        snap_gets=[(e.get("account"), e.get("version")) for e in events if e["event"] == "snapshot.get"],
        snap_pubs=[(e.get("account"), e.get("version"), e.get("size")) for e in events
                   if e["event"] == "snapshot.publish"],
        to_authority=[e for e in sends if e.get("to") in authorities],
    )


def _people_tables(v: RelayView) -> list[Table]:
    t_start = v.t_start
    return [
        Table(
            "Accounts (who, from where, when)",
            ["account", "authority", "sessions", "addresses", "first seen (s)", "last seen (s)", "events"],
            [
                [
                    _short(acc),
                    a["authority"],
                    a["sessions"],
                    ", ".join(sorted(a["addresses"])) or "-",
                    (a["first"] or t_start) - t_start,
                    (a["last"] or t_start) - t_start,
                    a["events"],
                ]
                for acc, a in sorted(v.accounts.items(), key=lambda kv: kv[1]["first"] or 0)
            ],
        ),
        Table(
            "Who sent to whom (the social graph)",
            ["from", "to", "messages", "bytes", "first (s)", "last (s)"],
            [
                [_short(f), _short(t), ed["count"], ed["bytes"], ed["first"] - t_start, ed["last"] - t_start]
                for (f, t), ed in sorted(v.edges.items(), key=lambda kv: -kv[1]["count"])
            ],
        ),
    ]


def _traffic_tables(v: RelayView) -> list[Table]:
    tables = [
        Table(
            "Attachments inferred (upload, then a send from the same account within "
            f"{ATTACHMENT_WINDOW_S:.0f} s)",
            ["from", "to", "blob bytes (padded)", "at (s)"],
            [[_short(r["from"]), _short(r["to"]), r["blob_bytes"], r["at"]] for r in v.inferred],
            note="Blob sizes are padded to Signal's 5% buckets: they still give an image's size within ~5%.",
        )
    ]
    if v.prekey_lookups:
        tables.append(
            Table(
                "Prekey lookups (a new conversation is starting)",
                ["who", "whose prekeys"],
                [[_short(a), _short(b)] for a, b in v.prekey_lookups],
            )
        )
    tables.append(
        Table(
            "Snapshots (who scans with which bank version)",
            ["event", "account", "version", "size"],
            [["publish", _short(a), ver, s] for a, ver, s in v.snap_pubs]
            + [["fetch", _short(a), ver, None] for a, ver in v.snap_gets],
        )
    )
    return tables


def _learned_plots(v: RelayView) -> list[Plot]:
    sizes = [float(e.get("size", 0) or 0) for e in v.sends]
    blob_sizes = [float(e.get("size", 0) or 0) for e in v.puts]
    timeline = []
    for acc in sorted(v.accounts, key=lambda a: v.accounts[a]["first"] or 0)[:8]:
        ts = [e["ts"] - v.t_start for e in v.events if acc in (e.get("account"), e.get("from"))]
        if ts:
            timeline.append(Series(_short(acc), list(range(1, len(ts) + 1)), x=ts))
    return [
        Plot(
            "hist",
            "Sizes the relay saw",
            "bytes",
            "events",
            [Series("message envelopes", sizes), Series("blob uploads", blob_sizes)],
            bins=30,
            name="relay-view-sizes",
        ),
        Plot(
            "line",
            "Activity per account over time (cumulative events)",
            "seconds",
            "events",
            timeline,
            name="relay-view-timeline",
        ),
    ]


def _learned_section(v: RelayView, log_name: str) -> Section:
    learned = Section("What the operator learned")
    learned.text.append(
        f"{len(v.events)} events over {v.events[-1]['ts'] - v.t_start:.1f} s from {log_name}; "
        f"{len(v.accounts)} accounts, {len(v.authorities)} of them authorities."
    )
    learned.tables.extend(_people_tables(v) + _traffic_tables(v))
    learned.plots.extend(_learned_plots(v))
    return learned


def _not_learned_section(v: RelayView) -> Section:
    not_learned = Section("What the operator did not learn")
    not_learned.text.append(
        "Fields present in the log: "
        + ", ".join(f"{k} ({n})" for k, n in sorted(v.fields.items()))
        + ". "
        + (
            "None of them carries message text, image bytes, perceptual hashes or scan results: the relay "
            "stores and forwards ciphertext and logs only ids, sizes, counts and times."
            if not v.leaks
            else f"WARNING: fields that may carry contents or scan results: {', '.join(v.leaks)}."
        )
    )
    not_learned.text.append(
        "Scan verdicts are not visible: the client decides before encrypting, and a blocked image is never "
        "uploaded, so it leaves no event at all. Which images matched the bank is not in the log. "
        + (
            f"However {len(v.to_authority)} message(s) went to an authority account: under a 'report' policy "
            "such traffic itself reveals that something was reported."
            if v.to_authority
            else "No message went to an authority account in this log."
        )
    )
    not_learned.tables.append(
        Table("Event kinds", ["event", "count"], [[k, n] for k, n in v.kinds.most_common()])
    )
    return not_learned


def _summary(v: RelayView) -> list[str]:
    summary = [
        f"{len(v.events)} events, {len(v.accounts)} accounts, {len(v.edges)} sender->recipient pairs, "
        f"{len(v.inferred)} attachment(s) inferred with their padded sizes, "
        f"{len(v.snap_gets)} snapshot fetch(es)",
        "Learned: who talked to whom, when, from which address, message and attachment sizes, "
        "snapshot versions",
        (
            "Not learned: message contents, image contents, hashes, match results (no such field in the log)"
            if not v.leaks
            else f"WARNING: the log has content-like fields: {', '.join(v.leaks)}"
        ),
    ]
    if v.bad_lines:
        summary.append(f"{len(v.bad_lines)} unreadable line(s) skipped (first: line {v.bad_lines[0]})")
    return summary


def _data(v: RelayView, path: Path) -> dict[str, Any]:
    return {
        "log": str(path),
        "events": len(v.events),
        "bad_lines": v.bad_lines[:100],
        "fields": dict(v.fields),
        "content_fields_found": v.leaks,
        "event_kinds": dict(v.kinds),
        "accounts": {acc: {**a, "addresses": sorted(a["addresses"])} for acc, a in v.accounts.items()},
        "edges": [{"from": f, "to": t, **ed} for (f, t), ed in v.edges.items()],
        "attachments_inferred": v.inferred,
        "prekey_lookups": v.prekey_lookups,
        "snapshot_fetches": v.snap_gets,
        "snapshot_publishes": v.snap_pubs,
        "messages_to_authorities": len(v.to_authority),
    }


def run(cfg: RelayViewConfig, seed: int = 0) -> Results:
    t0 = time.perf_counter()
    path = Path(cfg.log)
    view = analyse(*read_log(path))
    meta = run_meta(seed, t0)
    return Results(
        "relay-view",
        "pocketscan research relay-view: what the relay operator sees",
        _summary(view),
        _data(view, path),
        [_learned_section(view, path.name), _not_learned_section(view)],
        meta,
    )
