"""`research threshold`: the false-opening arithmetic agrees with its Monte Carlo check, the distinguishers
behave at their known extremes, and `research fpr` uses the configured threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from client.cli.main import main
from client.config import Settings, save_settings
from client.locations import Profile
from research.evals.threshold import _monte_carlo, _p_open_year, auc, p_from_fpr_results, parse_rate


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(["research", *argv, "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_parse_rate_and_auc() -> None:
    p, low, high, _ = parse_rate("3/1000")
    assert p == 0.003 and low < p < high
    assert parse_rate("0.01")[:3] == (0.01, 0.01, 0.01)
    for bad in ("4/3", "x/2", "1.5", "nan", "-1"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert auc([2, 3], [0, 1]) == 1.0 and auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5


@pytest.mark.parametrize(("p", "per_day", "t"), [(0.01, 5, 3), (0.003, 20, 2), (0.05, 2, 5)])
def test_formula_agrees_with_monte_carlo(p: float, per_day: float, t: int) -> None:
    exact = _p_open_year(p, per_day, t, 30.0)
    mc = _monte_carlo(np.random.default_rng(7), p, per_day, t, 30.0, 40_000)
    # Wilson 95% interval of the simulation, widened by the Poisson-vs-binomial difference (< 1% here)
    assert mc.wilson_low - 0.01 <= exact <= mc.wilson_high + 0.01


def test_threshold_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    res = _run(capsys, "threshold", "--p", "0/2000", "--out", str(tmp_path), "--report-threshold", "3",
               "--eval-accounts", "60", "--mc-accounts", "2000", "--synthetic-rate", "0",
               "--synthetic-rate", "0.2", "--images-per-day", "10", "--threshold", "1",
               "--opening-threshold", "3")
    data = res["data"]
    assert data["configured_threshold"] == 3 and data["p"] == 0.0 and data["p_high"] > 0
    rows = {r["threshold"]: r for r in data["false_openings"]}
    assert set(rows) == {1, 3} and rows[3]["configured"]
    assert rows[3]["expected_opened_accounts"] == 0.0 < rows[3]["expected_opened_accounts_high"]
    assert rows[1]["expected_opened_accounts_high"] > rows[3]["expected_opened_accounts_high"]
    off, on = data["distinguishability"]
    # nothing below t ever opens; without synthetic vouchers any voucher gives a matching account away
    assert off["accounts_reaching_t"] == on["accounts_reaching_t"] == 0
    assert off["auc_count"]["auc"] == 1.0 and off["non_matching"]["mean"] == 0.0
    assert on["non_matching"]["mean"] > 0 and on["auc_count"]["auc"] < 1.0
    # synthetic vouchers leave with delivered images: timing labels almost every voucher correctly
    assert on["timing_voucher_accuracy"]["p"] > 0.95
    # held for an hour on average, a voucher rarely sits next to its own upload: timing loses its edge
    assert on["delayed_timing_voucher_accuracy"]["p"] < 0.5 < on["timing_voucher_accuracy"]["p"]
    assert on["auc_timing_delayed"]["auc"] < on["auc_timing"]["auc"]
    # opening: without decoys exactly t real vouchers open; decoys never open a wrong key
    opening = {(r["threshold"], r["synthetic"]): r for r in data["opening_cost"]}
    assert opening[(3, 0)]["real_needed"] == 3 and len(opening) == 5
    assert all(r["opened"] and r["real_needed"] >= r["threshold"] for r in data["opening_cost"])
    for name in ("threshold-false-openings", "threshold-distinguishability", "threshold-counts"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000


def test_threshold_command_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (["--out", str(tmp_path)], ["--out", str(tmp_path), "--p", "2/1"],
                 ["--out", str(tmp_path), "--fpr-results", str(tmp_path / "missing.json")]):
        assert main(["research", "threshold", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_p_from_fpr_results_and_fpr_uses_configured_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fpr_self: Path, bank_dir: Path, benign_dir: Path
) -> None:
    p, low, high, source = p_from_fpr_results(str(fpr_self / "results.json"))
    assert p == 1.0 and low < 1.0 == high and "snapshot verdict" in source
    profile = Profile(tmp_path / "profile")
    profile.ensure()
    save_settings(profile.settings_file, Settings(report_threshold=7))
    res = _run(capsys, "fpr", "--bank", str(bank_dir), "--benign", str(benign_dir), "--out",
               str(tmp_path / "fpr"), "--no-snapshot", "--profile", str(profile.root))
    account = res["data"]["algos"]["pdq"]["account"]
    assert account["configured_threshold"] == 7
    assert 7 in {r["threshold"] for r in account["rows"]}
    assert any("report-threshold t=7" in line for line in res["summary"])
