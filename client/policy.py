"""The scanning policy: a scan result and the user's policy in, a decision out (pure).

Policies (chosen in settings):

``off``
    The control arm of an experiment: images are not scanned at all and are sent.
``warn``
    A match is shown to the sender with its reason; the sender may still send or cancel.
``block``
    A match is not sent; the sender is told which snapshot and how many votes.
``report``
    A match is blocked, and a report sealed to the authority's key goes through the relay.

Images that cannot be scanned are never a silent pass. The stated rule:

=============  =========  ==========  ===========  ===========
outcome        off        warn        block        report
=============  =========  ==========  ===========  ===========
no_match       send       send        send         send
match          send       confirm     block        report
low_quality    send       confirm     confirm      confirm
error          send       confirm     block        block
=============  =========  ==========  ===========  ===========

``low_quality`` (quality below the algorithm's gate, PDQ's 50: flat colours, blank screenshots) cannot be
matched reliably, so the sender must confirm, knowingly, that an unchecked image leaves the device.
``error`` (corrupt file, decompression bomb, unsupported format) is blocked under ``block``
and ``report``: a file the scanner cannot decode is exactly what an evasion would send. No
report is filed for an error or low quality: there is no match to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from scanner.outcome import Outcome, ScanOutcome

__all__ = [
    "POLICIES",
    "Action",
    "Decision",
    "Outcome",
    "PolicyName",
    "ScanOutcome",
    "ScanResult",
    "decide",
    "format_votes",
    "parse_policy",
]

PolicyName = Literal["off", "warn", "block", "report"]
POLICIES: tuple[PolicyName, ...] = get_args(PolicyName)

Action = Literal["send", "confirm", "block", "report"]

ScanResult = ScanOutcome
"""Deprecated alias of :class:`scanner.outcome.ScanOutcome` (the one scan outcome); use that name."""

_RULES: dict[PolicyName, dict[str, Action]] = {
    "off": {"no_match": "send", "match": "send", "low_quality": "send", "error": "send", "skipped": "send"},
    "warn": {"no_match": "send", "match": "confirm", "low_quality": "confirm", "error": "confirm",
             "skipped": "confirm"},
    "block": {"no_match": "send", "match": "block", "low_quality": "confirm", "error": "block",
              "skipped": "block"},
    "report": {"no_match": "send", "match": "report", "low_quality": "confirm", "error": "block",
               "skipped": "block"},
}


@dataclass(frozen=True)
class Decision:
    """What the client does with one outgoing image, and why (shown to the sender)."""

    action: Action
    policy: PolicyName
    outcome: Outcome
    explanation: str

    @property
    def may_send(self) -> bool:
        """True when the image may leave the device without asking (``send``)."""
        return self.action == "send"


def parse_policy(value: str) -> PolicyName:
    """Validate a policy name from settings or the command line."""
    name = value.strip().lower()
    for policy in POLICIES:
        if policy == name:
            return policy
    raise ValueError(f"unknown policy {value!r}: choose one of {', '.join(POLICIES)}")


def format_votes(votes: int, min_votes: int | None = None) -> str:
    """Votes as people read them: ``1 vote``, ``384 votes (55 needed)`` (never a fraction like 384/55).

    The one formatting of vote counts: the CLI's ``reason``, the TUI's banner, dialogs and not-sent items.
    """
    text = f"{votes:,} vote{'' if votes == 1 else 's'}"
    return text if min_votes is None else f"{text} ({min_votes:,} needed)"


def _explain(scan: ScanOutcome, action: Action, report_threshold: int = 1) -> str:
    snap = ""
    if scan.snapshot_version is not None:
        fp = (scan.snapshot_fingerprint or "")[:16]
        snap = f"snapshot v{scan.snapshot_version} ({fp})"
    if scan.outcome == "match":
        votes = format_votes(scan.votes, scan.min_votes)
        what = f"matches the hash bank in {snap or 'the snapshot'}: {votes}"
    elif scan.outcome == "no_match":
        what = f"no match in {snap or 'the snapshot'}: {format_votes(scan.votes, scan.min_votes)}"
    elif scan.outcome == "low_quality":
        what = f"could not be checked: image quality {scan.quality} is below the matching threshold"
    elif scan.outcome == "error":
        what = f"could not be scanned: {scan.reason or 'unreadable image'}"
    else:
        what = "not scanned" + (f" ({scan.reason})" if scan.reason else "")
    tail = {
        "send": "sent",
        "confirm": "send anyway?",
        "block": "not sent",
        "report": "not sent; a sealed report goes to the authority",
    }[action]
    if action == "report" and report_threshold > 1:
        tail = (f"not sent; a sealed voucher goes to the authority, readable only once it holds "
                f"{report_threshold} from this account in this period")
    return f"{what}; {tail}"


def decide(scan: ScanOutcome, policy: PolicyName, *, report_threshold: int = 1) -> Decision:
    """Apply ``policy`` to ``scan`` following the table in this module's docstring.

    ``report_threshold`` (``client.vouchers``) only changes what the sender is told about a report.
    """
    if policy not in _RULES:
        raise ValueError(f"unknown policy {policy!r}")
    action = _RULES[policy][scan.outcome]
    return Decision(action=action, policy=policy, outcome=scan.outcome,
                    explanation=_explain(scan, action, report_threshold))
