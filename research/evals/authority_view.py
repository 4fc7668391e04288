"""What the authority learns from each report, submission and appeal, read from its own store.

``pocketscan research authority-view --store STORE --out DIR`` reads the authority's SQLite store the way
a curious (or compelled) authority would and reports, per item kind:

* **report** (the ``report`` policy): the reporter's and the intended recipient's accounts (one edge of the
  social graph), when, the snapshot version and votes, the image's PDQ hash (near-duplicates of it can be
  recognised in every later report) and its SHA-256 (the exact file, across accounts);
* **submission** (``pocketscan protect``): the submitter's account and the hashes of a private photo (PDQ,
  its dihedral variants, the learned hash): the authority can recognise that photo wherever it is later
  reported or appealed, and so link the people who hold it;
* **appeal**: the appellant's account, the hashes of the blocked image, the snapshot version that blocked
  it, the reason in the user's words, and the image itself when ``--attach-image`` was given.

It then links items across accounts by PDQ distance (<= 31 bits): every link is something the authority
learns about who holds which picture. Finally it reports what the relay learns about traffic to the
authority: the sealed envelope sizes of each kind (measured by sealing representative items), i.e. whether
the relay can tell a report from a submission or an appeal by size alone.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.evals.common import run_meta
from research.results import Results, Section, Table
from scanner.hashers.spec import PDQ

if TYPE_CHECKING:
    from client.authority.store import Decision, Item

__all__ = ["AuthorityViewConfig", "cross_account_links", "envelope_sizes", "item_fact", "run"]

LINK_DISTANCE = PDQ.match_distance
LEARNED: dict[str, list[str]] = {
    "report": [
        "reporter account",
        "recipient account (a social-graph edge)",
        "time",
        "snapshot version",
        "votes",
        "quality",
        "PDQ hash of the image",
        "SHA-256 of the exact file",
    ],
    "submission": [
        "submitter account",
        "time",
        "PDQ hash and 8 dihedral variants of a private photo",
        "learned hash",
        "quality",
    ],
    "appeal": [
        "appellant account",
        "time",
        "PDQ hash and variants of the blocked image",
        "learned hash",
        "snapshot version that blocked it",
        "votes",
        "the reason, in the user's words",
        "the image itself (only with --attach-image)",
    ],
    "voucher": [
        "sender account",
        "time",
        "key period and threshold t",
        "below t nothing else: real and synthetic vouchers are ciphertext of one size",
        "at t: every real voucher of the period becomes a report (the fields above)",
    ],
}


@dataclass
class AuthorityViewConfig:
    store: str
    out: str
    quiet: bool = True


def _short(account: object) -> str:
    return str(account or "?")[:8]


def _pdq_set(body: dict[str, Any]) -> list[int]:
    hashes = body.get("hashes") or {}
    values = [hashes.get("pdq"), *(hashes.get("pdq_dihedral") or [])]
    return [int(v, 16) for v in values if isinstance(v, str) and len(v) == PDQ.hex_digits]


def envelope_sizes(reason_lengths: tuple[int, ...] = (0, 200)) -> dict[str, int]:
    """Sizes of sealed envelopes of each kind, as the relay sees them (representative items)."""
    from client.authority.items import seal_item
    from client.crypto.identity import IdentityKeyPair
    from client.report import Report, seal_report
    from scanner.authority import AuthorityKey

    key = AuthorityKey.generate().public_key
    me = IdentityKeyPair.generate()
    pdq = "5a" * 32
    hashes = {"pdq": pdq, "pdq_dihedral": [pdq] * 8, "onnx": "11" * 32}
    report = Report(me.account_id, me.account_id, time.time(), "ab" * 32, int(time.time()), 5, 100, pdq,
                    "00" * 32)
    sizes = {
        "report": len(seal_report(report, key)),
        "submission": len(
            seal_item(
                "submission",
                {"submission_id": "ab" * 16, "created_at": time.time(), "hashes": hashes, "quality": 100},
                me,
                key,
            )
        ),
    }
    for n in reason_lengths:
        body = {
            "appeal_id": "ab" * 16,
            "created_at": time.time(),
            "hashes": hashes,
            "reason": "x" * n,
            "snapshot_version": int(time.time()),
            "snapshot_fingerprint": "ab" * 32,
            "votes": 5,
            "quality": 100,
            "blocked": True,
        }
        sizes[f"appeal (reason of {n} characters)"] = len(seal_item("appeal", body, me, key))
    from client.vouchers.voucher import derive_period_key, make_synthetic_voucher, seal_voucher

    period_key = derive_period_key(bytes(32), me.account_id, 1, 3)
    voucher = make_synthetic_voucher(period_key, 1)
    sizes["voucher (real or synthetic, same size)"] = len(seal_voucher(voucher, key))
    return sizes


def item_fact(item: Item) -> str:
    """What one item tells the authority, in a sentence (accounts shortened)."""
    b = item.body
    return {
        "report": f"{_short(item.sender)} tried to send a banked-looking image to "
        f"{_short(b.get('recipient'))}"
        f" (votes {b.get('votes')}, snapshot v{b.get('snapshot_version')})",
        "submission": f"{_short(item.sender)} holds a private photo; {len(_pdq_set(b))} PDQ hashes of it",
        "appeal": f"{_short(item.sender)} was blocked by snapshot v{b.get('snapshot_version')}"
        f"{' and sent the image' if item.has_attachment else ''}; reason: "
        f"{str(b.get('reason', ''))[:60]!r}",
        "voucher": f"{_short(item.sender)} sent a voucher (real or synthetic) in key period "
        f"{b.get('period')} (t = {b.get('threshold')}); unreadable below t",
    }.get(item.kind, f"{item.kind} from {_short(item.sender)}")


def cross_account_links(items: list[Item]) -> list[list[Any]]:
    """Pairs of items from different accounts whose PDQ hashes are within :data:`LINK_DISTANCE` bits."""
    links = []
    hashed = [(i, _pdq_set(i.body)) for i in items]
    for a_index, (a, ha) in enumerate(hashed):
        for other, hb in hashed[a_index + 1 :]:
            if not ha or not hb or a.sender == other.sender:
                continue
            distance = min(bin(x ^ y).count("1") for x in ha for y in hb)
            if distance <= LINK_DISTANCE:
                links.append([a.id, a.kind, _short(a.sender), other.id, other.kind, _short(other.sender),
                              distance])
    return links


def _per_item_section(items: list[Item], decisions: dict[str, Decision | None],
                      kinds: Counter[str]) -> Section:
    rows = []
    for item in items:
        decision = decisions.get(item.id)
        rows.append(
            [
                item.id,
                item.kind,
                _short(item.sender),
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(item.received_at)),
                item_fact(item),
                decision.decision if decision else "waiting",
            ]
        )
    per_item = Section("What each item told the authority")
    per_item.tables.append(
        Table(
            "Items (UTC)", ["id", "kind", "from", "received", "what the authority learns", "decision"], rows
        )
    )
    per_item.tables.append(
        Table(
            "Fields learned per kind",
            ["kind", "items", "fields"],
            [[k, kinds.get(k, 0), "; ".join(v)] for k, v in LEARNED.items()],
        )
    )
    return per_item


def _linked_section(links: list[list[Any]]) -> Section:
    linked = Section("Linked across accounts (the same picture, PDQ distance <= 31)")
    linked.text.append(
        "Each row is an inference the authority can draw without any image: two accounts hold near-identical "
        "pictures (e.g. a person's protected photo, later reported or appealed by someone else)."
    )
    linked.tables.append(
        Table("Links", ["item", "kind", "account", "item", "kind", "account", "distance"], links)
    )
    return linked


def _relay_section(sizes: dict[str, int], refused: int) -> Section:
    relay = Section("What the relay learns about traffic to the authority")
    relay.text.append(
        "The relay sees only a sealed envelope from an authenticated account to the authority's account, "
        "its size and time. The kinds have different sizes, so size alone tells a report from a submission, "
        "and an appeal's size grows with its reason. Appeals with --attach-image also upload a blob of about "
        "the image's size. Refused envelopes: " + str(refused) + "."
    )
    relay.tables.append(
        Table("Sealed envelope sizes (bytes)", ["kind", "bytes"], [[k, v] for k, v in sizes.items()])
    )
    return relay


_LINK_FIELDS = ("item_a", "kind_a", "account_a", "item_b", "kind_b", "account_b", "distance")


def run(cfg: AuthorityViewConfig, seed: int = 0) -> Results:
    from client.authority.store import AuthorityStore

    t0 = time.perf_counter()
    if not Path(cfg.store).is_file():
        raise FileNotFoundError(f"{cfg.store}: no such authority store")
    with AuthorityStore(cfg.store) as store:
        items = store.items(status=None)
        refused = store.refused()
        decisions = {i.id: store.decision_of(i.id) for i in items}
    kinds = Counter(i.kind for i in items)
    links = cross_account_links(items)
    sizes = envelope_sizes()
    summary = [
        f"{len(items)} items ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}), "
        f"{len(refused)} refused envelopes",
        f"{len(links)} cross-account link(s) by PDQ distance <= {LINK_DISTANCE}",
        "Envelope sizes at the relay: " + ", ".join(f"{k} {v} B" for k, v in sizes.items()),
    ]
    data = {
        "store": cfg.store,
        "items": len(items),
        "kinds": dict(kinds),
        "refused": len(refused),
        "links": [dict(zip(_LINK_FIELDS, row, strict=True)) for row in links],
        "envelope_sizes": sizes,
        "learned_fields": LEARNED,
    }
    meta = run_meta(seed, t0)
    sections = [_per_item_section(items, decisions, kinds), _linked_section(links),
                _relay_section(sizes, len(refused))]
    return Results(
        "authority-view",
        "pocketscan research authority-view: what the authority learns",
        summary,
        data,
        sections,
        meta,
    )
