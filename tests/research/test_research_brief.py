"""`research brief`: one self-contained page whose every number links to a run, rendered offline in
headless Chromium; and `research calibrate`: thresholds fitted on one split, reported on another."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from client.cli.main import main
from tests.research.browserkit import dump_dom, needs_chromium


@pytest.fixture(scope="module")
def calibrate_run(tmp_path_factory: pytest.TempPathFactory, bank_dir: Path, benign_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("calibrate")
    code = main(
        [
            "research",
            "calibrate",
            "--calibrate-on",
            str(benign_dir),
            "--test-on",
            str(bank_dir),
            "--algo",
            "pdq",
            "--transforms",
            "jpeg70,crop0.05",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def robustness_run(tmp_path_factory: pytest.TempPathFactory, bank_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("robustness")
    code = main(
        [
            "research",
            "robustness",
            "--bank",
            str(bank_dir),
            "--limit",
            "4",
            "--algo",
            "pdq",
            "--transforms",
            "jpeg70,rotate4",
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def brief(
    tmp_path_factory: pytest.TempPathFactory, fpr_self: Path, robustness_run: Path, calibrate_run: Path
) -> Path:
    out = tmp_path_factory.mktemp("brief")
    code = main(
        [
            "research",
            "brief",
            "--from",
            str(fpr_self),
            str(robustness_run),
            "--from",
            str(calibrate_run),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out / "brief.html"


def test_calibration_and_test_splits_are_reported_apart(calibrate_run: Path) -> None:
    res = json.loads((calibrate_run / "results.json").read_text())
    data = res["data"]
    assert set(data["calibration"]["files"]).isdisjoint(data["test"]["files"])
    pdq = data["algos"]["pdq"]
    assert pdq["rules"]["fixed"]["test"]["threshold"] == 31
    for rule in ("fixed", "matched_fmr", "precision"):
        test = pdq["rules"][rule]["test"]
        assert test["recall"]["n"] == 2 * data["test"]["images"]  # 2 transforms per test image
        assert set(test["recall_by_transform"]) == {"jpeg70", "crop0.05"}
        assert 0.0 <= test["precision"] <= 1.0
    assert pdq["rules"]["precision"]["calibration"]["precision"] >= 0.9999
    snap = pdq["snapshot_min_votes"]
    assert 1 <= snap["calibrated_min_votes"] <= snap["tables"] + 1
    assert snap["test_at_default"]["min_votes"] == snap["default_min_votes"]


def test_a_split_of_one_folder_is_deterministic_and_keeps_copies_together(
    tmp_path: Path, bank_dir: Path
) -> None:
    from research.evals.calibrate import split_folder

    folder = tmp_path / "imgs"
    shutil.copytree(bank_dir, folder)
    a = split_folder(str(folder), 0.5, seed=3)
    b = split_folder(str(folder), 0.5, seed=3)
    assert [e.path for e in a[0]] == [e.path for e in b[0]] and len(a[0]) + len(a[1]) == 14
    keys = {e.path: "one-cluster" for e in a[0] + a[1]}
    cal, test = split_folder(str(folder), 0.5, seed=3, clusters=keys)
    assert not cal or not test  # one cluster lands on one side


def test_precision_rule_is_perceptions() -> None:
    import numpy as np

    from research.evals.calibrate import precision_threshold

    pos = np.array([0, 2, 4, 10, 20])
    wrong = np.array([15, 30, 40, 50, 60])
    t, prec = precision_threshold(pos, wrong, 0.9999)
    assert t == 10 and prec == 1.0  # at 20, one closest incorrect (15) is inside: precision 5/6


def test_the_brief_links_every_number_to_its_run(brief: Path) -> None:
    page = brief.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page)
    assert not re.search(r"\bsrc=|url\(|@import", page)
    links = re.findall(r'<a class="n" href="([^"]+)"', page)
    assert len(links) >= 20
    for href in set(links):
        assert not href.startswith("/") and (brief.parent / href).resolve().is_file(), href
    assert any(h.endswith("report.html") for h in links)
    main_part = page.split("</h1>", 1)[1].split("<h2>Runs behind this page</h2>")[0]
    text = re.sub(
        r"<svg.*?</svg>|<code>.*?</code>|<a class=\"n\"[^>]*>.*?</a>|<span class=\"k\">.*?</span>"
        r"|<p class=\"note\">.*?</p>",
        " ",
        main_part,
        flags=re.S,
    )
    text = re.sub(r"<[^>]+>", " ", text)
    stray = re.search(r".{0,40}\d.{0,40}", text)
    assert stray is None, f"a number without a link: {stray.group(0) if stray else ''}"
    for heading in ("innocent image flagged", "edited copies", "evading", "relay and the authority"):
        assert heading in page
    assert "Not measured" in page  # no attack run was given: the page says so instead of inventing


@needs_chromium
def test_the_brief_renders_offline_in_chromium(brief: Path, tmp_path: Path) -> None:
    body, _dom = dump_dom(brief, tmp_path / "profile")
    attrs = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body))
    assert attrs.get("resources") == "0", body  # nothing fetched from the network or the disk
    assert int(attrs.get("number-links", "0")) >= 20
    assert int(attrs.get("svg", "0")) >= 1


def test_a_folder_without_results_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["research", "brief", "--from", str(tmp_path), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no results.json" in err[0]
