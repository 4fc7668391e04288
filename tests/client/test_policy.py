"""The policy table: every (policy, outcome) pair, and explanations that name snapshot and votes."""

from __future__ import annotations

import pytest

from client.policy import POLICIES, ScanOutcome, decide, parse_policy

EXPECTED = {
    ("off", "no_match"): "send", ("off", "match"): "send", ("off", "low_quality"): "send",
    ("off", "error"): "send", ("off", "skipped"): "send",
    ("warn", "no_match"): "send", ("warn", "match"): "confirm", ("warn", "low_quality"): "confirm",
    ("warn", "error"): "confirm", ("warn", "skipped"): "confirm",
    ("block", "no_match"): "send", ("block", "match"): "block", ("block", "low_quality"): "confirm",
    ("block", "error"): "block", ("block", "skipped"): "block",
    ("report", "no_match"): "send", ("report", "match"): "report", ("report", "low_quality"): "confirm",
    ("report", "error"): "block", ("report", "skipped"): "block",
}


@pytest.mark.parametrize(("policy", "outcome"), sorted(EXPECTED))
def test_table(policy: str, outcome: str) -> None:
    scan = ScanOutcome(outcome=outcome, votes=3, min_votes=2, quality=80)  # type: ignore[arg-type]
    decision = decide(scan, parse_policy(policy))
    assert decision.action == EXPECTED[(policy, outcome)]
    assert decision.policy == policy and decision.outcome == outcome
    assert decision.may_send == (decision.action == "send")


def test_unscannable_is_never_a_silent_pass() -> None:
    for policy in POLICIES:
        if policy == "off":
            continue
        for outcome in ("low_quality", "error", "skipped"):
            assert decide(ScanOutcome(outcome=outcome), policy).action != "send"  # type: ignore[arg-type]


def test_block_names_snapshot_and_votes() -> None:
    scan = ScanOutcome(outcome="match", votes=5, min_votes=2, snapshot_version=7,
                      snapshot_fingerprint="ab" * 32)
    text = decide(scan, "block").explanation
    assert "5 votes (2 needed)" in text and "/2" not in text
    assert "v7" in text and "abababab" in text and "not sent" in text


def test_error_reason_is_shown() -> None:
    text = decide(ScanOutcome(outcome="error", reason="truncated JPEG"), "warn").explanation
    assert "truncated JPEG" in text and "send anyway" in text


def test_parse_policy() -> None:
    assert parse_policy(" BLOCK ") == "block"
    with pytest.raises(ValueError, match="choose one of"):
        parse_policy("maybe")


def test_report_threshold_changes_only_what_the_sender_is_told() -> None:
    from client.policy import ScanResult, decide

    match = ScanResult("match", votes=5, min_votes=3, snapshot_version=2, snapshot_fingerprint="ab" * 32)
    plain = decide(match, "report")
    vouched = decide(match, "report", report_threshold=30)
    assert plain.action == vouched.action == "report"
    assert "sealed report" in plain.explanation
    assert "sealed voucher" in vouched.explanation and "holds 30" in vouched.explanation
    assert decide(match, "block", report_threshold=30) == decide(match, "block")


def test_votes_read_as_counts_not_fractions() -> None:
    from client.policy import format_votes

    assert format_votes(1) == "1 vote"
    assert format_votes(0) == "0 votes"
    assert format_votes(384, 55) == "384 votes (55 needed)"
    assert format_votes(1, 1) == "1 vote (1 needed)"
    scan = ScanOutcome(outcome="no_match", votes=1, min_votes=91, snapshot_version=3)
    text = decide(scan, "block").explanation
    assert "1 vote (91 needed)" in text and "1 votes" not in text
