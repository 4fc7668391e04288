"""`pocketscan research sensitive` with the stand-in ONNX classifier: counts, exclusions, report files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("onnx")

from client.cli.main import main as cli
from research.evals.sensitive import SensitiveConfig, run
from research.skin import generate_skin, skin_image
from scanner.classifiers.registry import clear_classifier_cache
from tests.scanner.standin_classifier import build_standin_detector, solid_png

REPO = Path(__file__).resolve().parents[2]


def _setup(tmp: Path) -> tuple[Path, Path, Path]:
    clear_classifier_cache()
    model = build_standin_detector(tmp / "model")
    benign = tmp / "benign"
    solid_png(benign / "reds" / "r1.png", (255, 0, 0), (96, 64))  # "sensitive" for the stand-in
    solid_png(benign / "reds" / "b1.png", (0, 0, 255), (96, 64))
    shutil.copy(REPO / "samples" / "gravel.jpg", benign / "photos.jpg")
    # a near copy of a bank photo (re-encoded): a true hash match that the benign set would count as false
    Image.open(REPO / "samples" / "rocket.jpg").save(benign / "reds" / "rocket_q80.jpg", quality=80)
    bank = tmp / "bank"
    bank.mkdir()
    for name in ("rocket.jpg", "gravel.jpg"):  # gravel.jpg is byte-identical to a benign file: excluded
        shutil.copy(REPO / "samples" / name, bank / name)
    return model, benign, bank


def test_rates_per_family_with_exclusions(tmp_path: Path) -> None:
    model, benign, bank = _setup(tmp_path)
    res = run(SensitiveConfig(benign=[str(benign)], bank=str(bank), out=str(tmp_path / "out"),
                              classifier=str(model), skin=3, generated=0, repeat=1), seed=0)
    fams = res.data["families"]
    assert fams["benign/reds"]["n"] == 3
    assert fams["benign/reds"]["classifier"]["k"] == 1  # the red image
    assert fams["benign/reds"]["pdq"]["k"] == 1  # the re-encoded bank photo
    assert "benign" not in fams  # the only root file was the excluded duplicate
    assert res.meta["excluded_bank_duplicates"] == [str(benign / "photos.jpg")]
    assert {"skin-synthetic/light", "skin-synthetic/medium", "skin-synthetic/dark"} <= set(fams)
    assert fams["all"]["n"] == 6 and res.data["timing"]["images"] == 3
    assert res.data["timing"]["classifier_file_cpu_ms"]["median"] > 0
    assert res.summary[0].startswith("standin-detector (threshold 0.5) on 6 benign images")


def test_command_writes_report_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, benign, bank = _setup(tmp_path)
    out = tmp_path / "out"
    status = cli(["research", "sensitive", "--benign", str(benign), "--bank", str(bank), "--classifier",
                  str(model), "--out", str(out), "--repeat", "1", "--json", "--quiet"])
    assert status == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["command"] == "sensitive" and payload["data"]["families"]["all"]["n"] == 3
    for name in ("results.json", "report.md", "report.html", "plots/fpr-per-family.png"):
        assert (out / name).is_file(), name
    assert cli(["research", "sensitive", "--benign", str(benign), "--bank", str(bank), "--classifier",
                str(tmp_path / "none.onnx"), "--out", str(out), "--quiet"]) == 2


def test_skin_images_are_deterministic(tmp_path: Path) -> None:
    a = list(generate_skin(tmp_path / "a", 4, 3))
    b = list(generate_skin(tmp_path / "b", 4, 3))
    assert [Path(p).read_bytes() for p in a] == [Path(p).read_bytes() for p in b]
    assert [Path(p).parent.name for p in a] == ["light", "medium", "dark", "light"]
    assert skin_image(0, "dark", 1).tobytes() != skin_image(0, "dark", 2).tobytes()
