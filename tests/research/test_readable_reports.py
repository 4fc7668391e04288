"""Reports that cannot mislead: small samples said to be small, no fake intervals, one axis per hash width,
a glossary, unreadable inputs listed, true defaults in --help. Small generated samples, real pipeline."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from client.cli.main import main
from research import readable, stats
from research.results import Results


@pytest.fixture(scope="module")
def small_fpr(tmp_path_factory: pytest.TempPathFactory, bank_dir: Path, benign_dir: Path) -> Path:
    """fpr of 21 benign images (one unreadable file added to each folder) with PDQ and pHash."""
    root = tmp_path_factory.mktemp("small-fpr")
    bank, benign = root / "bank", root / "benign"
    shutil.copytree(bank_dir, bank)
    shutil.copytree(benign_dir, benign)
    (bank / "broken-bank.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (benign / "chat" / "broken-benign.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (benign / "blank").mkdir()
    for i, colour in enumerate(("white", "black", "#336699")):  # flat: PDQ quality 0, gated out
        Image.new("RGB", (200, 150), colour).save(benign / "blank" / f"blank{i}.png")
    out = root / "out"
    assert main(["research", "fpr", "--bank", str(bank), "--benign", str(benign), "--out", str(out),
                 "--algo", "pdq,phash", "--no-snapshot", "--workers", "1", "--quiet"]) == 0
    return out


def test_small_sample_headline_says_so_in_words(small_fpr: Path) -> None:
    res = json.loads((small_fpr / "results.json").read_text())
    headline, *rest = res["summary"]
    n = res["data"]["algos"]["pdq"]["benign_scanned"]
    assert 0 < n < 30
    assert "rule of three" in headline and f"3/{n}" in headline
    pdq_note = next(line for line in rest if line.startswith("pdq: the sample is too small"))
    assert "innocent accounts" in pdq_note and "with probability" not in pdq_note
    report = (small_fpr / "report.md").read_text()
    assert "innocent accounts flagged per year" not in report  # no table of 1e9 flagged accounts
    assert "accounts of 1e+09" not in report and "probability 1 " not in report


def test_families_with_nothing_scanned_say_so(small_fpr: Path) -> None:
    report = (small_fpr / "report.md").read_text()
    blank_rows = [line for line in report.splitlines() if line.startswith("| blank |")]
    assert blank_rows and blank_rows[0] == f"| blank | 3 | 0 | {readable.GATED_OUT} |"  # PDQ's quality gate
    series = readable.family_series("pdq", ["flat", "chat"], {
        "flat": {"images": 3, "scanned": 0, "p": 0.0, "wilson_low": 0.0, "wilson_high": 1.0},
        "chat": {"images": 3, "scanned": 3, "p": 0.0, "wilson_low": 0.0, "wilson_high": 0.56},
    })
    assert math.isnan(series.values[0]) and math.isnan(series.high[0])  # type: ignore[index]
    assert series.notes == [readable.GATED_OUT, ""] and series.high[1] == 0.56  # type: ignore[index]


def test_one_histogram_per_bit_width_with_thresholds(small_fpr: Path) -> None:
    plots = {p.name for p in (small_fpr / "plots").iterdir()}
    assert {"fpr-nearest-256bit.png", "fpr-nearest-64bit.png"} <= plots
    made = readable.nearest_histograms([("pdq", 256, 31, [100.0]), ("phash", 64, 8, [20.0]),
                                        ("dhash", 64, 10, [22.0])], name="x")
    assert [p.title.split("-")[0] for p in made] == ["256", "64"]
    assert made[1].vlines == [(8, "phash threshold 8"), (10, "dhash threshold 10")]
    assert all(max(p.bins) <= int(p.title.split("-")[0]) + 1 for p in made)  # type: ignore[arg-type]


def test_glossary_and_unreadable_inputs_are_in_the_report(small_fpr: Path) -> None:
    report = (small_fpr / "report.md").read_text()
    glossary = report.split("## Glossary", 1)[1]
    for term in ("per-query", "per-pair", "dihedral", "Wilson", "rule of three"):
        assert f"| {term} |" in glossary, term
    unreadable = report.split("## Unreadable inputs (2)", 1)[1].split("## ", 1)[0]
    assert "broken-bank.jpg" in unreadable and "broken-benign.png" in unreadable
    res = json.loads((small_fpr / "results.json").read_text())
    assert any("could not be read" in line for line in res["summary"])
    assert "broken-benign.png" in (small_fpr / "report.html").read_text()


def test_a_large_enough_sample_keeps_the_account_arithmetic() -> None:
    rate = stats.rate(0, 2156)
    rows = stats.account_table(rate.p, rate.wilson_high, images_per_year=[1000], thresholds=[30],
                               accounts=10**9)
    assert not readable.sample_too_small(rate.wilson_high, rows)
    assert "with probability up to" in readable.account_note("pdq", "snapshot", rate, rows)
    small = stats.rate(0, 50)
    rows = stats.account_table(small.p, small.wilson_high, images_per_year=[1000], thresholds=[30],
                               accounts=10**9)
    note = readable.account_note("pdq", "snapshot", small, rows)
    assert readable.sample_too_small(small.wilson_high, rows) and "3/50 = 6%" in note
    assert "benign images with no false match would bound it" in note


def test_glossary_only_lists_terms_the_report_uses() -> None:
    assert readable.glossary_section(Results("x", "t", ["nothing technical"], {})) is None
    sec = readable.glossary_section(Results("x", "t", ["Wilson 95% intervals"], {}))
    assert sec is not None and [row[0] for row in sec.tables[0].rows] == ["Wilson"]


def test_robustness_help_states_the_real_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["research", "robustness", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default pdq,phash,dhash,ahash" in help_text
    with pytest.raises(SystemExit):
        main(["research", "fpr", "--help"])
    fpr_help = " ".join(capsys.readouterr().out.split())
    from research.evals.fpr import FprConfig

    cfg = FprConfig(bank="b", benign="n", out="o")
    assert f"default {', '.join(map(str, cfg.account.images_per_year))})" in fpr_help
    assert f"default {', '.join(map(str, cfg.account.thresholds))})" in fpr_help
    from research.evals import robustness

    assert "cfg.algos or [\"pdq\", \"phash\", \"dhash\", \"ahash\"]" in Path(robustness.__file__).read_text()


def test_robustness_lists_unreadable_bank_files(tmp_path: Path, samples_dir: Path) -> None:
    bank = tmp_path / "bank"
    bank.mkdir()
    for name in ("coffee.jpg", "chelsea.jpg"):
        shutil.copy(samples_dir / name, bank / name)
    (bank / "cut.jpg").write_bytes((samples_dir / "rocket.jpg").read_bytes()[:300])  # truncated JPEG
    out = tmp_path / "out"
    assert main(["research", "robustness", "--bank", str(bank), "--out", str(out), "--algo", "pdq",
                 "--transforms", "jpeg70", "--no-snapshot", "--workers", "1", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "## Unreadable inputs (1)" in report and "cut.jpg" in report.split("## Unreadable inputs (1)")[1]
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert any("1 input file(s) could not be read" in line for line in summary)
