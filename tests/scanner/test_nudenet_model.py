"""The real default model (NudeNet 320n from ``pocketscan[sensitive]``): determinism, agreement with the
nudenet package's own pipeline, and the benign false-positive figures recorded in docs/sensitive.md.

Skipped without the extra (``pip install -e ".[sensitive]"``; CI installs it). No sensitive image is used:
these are benign-image figures only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from scanner.classifiers.nudenet import nudenet_model_path

    nudenet_model_path()
except Exception as exc:  # ClassifierUnavailable, or a broken install
    pytest.skip(f"pocketscan[sensitive] is not installed ({exc})", allow_module_level=True)

from scanner.classifiers import get_classifier
from scanner.classifying import classify_file

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "samples").glob("*.jpg"))
# ../shared beside the checkout (or beside the folder of worktrees)
CORPUS = next((p for p in (REPO.parent / "shared" / "corpus", REPO.parents[1] / "shared" / "corpus")
               if p.is_dir()), REPO.parent / "shared" / "corpus")


def _rate(paths: list[Path]) -> dict[str, dict[str, object]]:
    clf = get_classifier("nudenet")
    return {p.name: classify_file(p, clf).as_dict() for p in paths}


def test_ratings_are_deterministic_across_runs_and_processes() -> None:
    first = _rate(SAMPLES)
    assert _rate(SAMPLES) == first
    proc = subprocess.run([sys.executable, "-m", "client.cli.main", "classify", *map(str, SAMPLES)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    other = {Path(r["path"]).name: {k: r[k] for k in ("label", "score", "model")}
             for r in map(json.loads, proc.stdout.splitlines())}
    assert other == first


def test_no_sample_photo_is_rated_sensitive() -> None:
    """Recorded figure: 0 of the 8 samples at threshold 0.5 (the highest, coffee.jpg, scores ~0.25)."""
    ratings = _rate(SAMPLES)
    assert len(ratings) == 8
    assert [n for n, r in ratings.items() if r["label"] == "sensitive"] == []
    assert max(float(r["score"]) for r in ratings.values()) < 0.4  # type: ignore[arg-type]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent (a fresh clone has no ../shared)")
def test_no_corpus_photo_is_rated_sensitive() -> None:
    """Recorded figure: 0 of the 46 corpus photos at threshold 0.5 (highest score ~0.35)."""
    ratings = _rate(sorted(CORPUS.glob("*.jpg")))
    assert len(ratings) == 46
    assert [n for n, r in ratings.items() if r["label"] == "sensitive"] == []


def test_agrees_with_the_nudenet_package_pipeline() -> None:
    """Our numpy/Pillow pre- and post-processing against NudeNet's own (OpenCV) on the samples: the same
    boxes and labels, scores within 0.05 (resampling filters differ). Runs in a subprocess: only this test
    imports the nudenet module (and with it OpenCV)."""
    code = (
        "import json, sys\n"
        "from nudenet import NudeDetector\n"
        "d = NudeDetector()\n"
        "print(json.dumps({p: d.detect(p) for p in sys.argv[1:]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *map(str, SAMPLES)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"the nudenet package's own pipeline does not run here: {proc.stderr.strip()[-200:]}")
    reference = json.loads(proc.stdout.strip().splitlines()[-1])
    clf = get_classifier("nudenet")
    from scanner.image import load_rgb

    for path in SAMPLES:
        ours = clf.classify_rgb(load_rgb(path, mode="exact"))  # the reference decodes at full resolution
        theirs = [d for d in reference[str(path)] if d["score"] >= 0.3]
        mine = {d.label: d for d in ours.detections}
        for det in theirs:
            assert det["class"] in mine, (path.name, det)
            got = mine[det["class"]]
            assert abs(got.score - det["score"]) < 0.05, (path.name, det, got)
            x, y, w, h = det["box"]
            assert got.box == pytest.approx((x, y, x + w, y + h), abs=6), (path.name, det, got)


@pytest.mark.slow
def test_synthetic_benign_figures(tmp_path: Path) -> None:
    """Recorded figures (docs/sensitive.md, seed 0): 0 of 210 generated confusers and 2 of 150 skin-tone-heavy
    synthetic images (1 medium, 1 dark, 0 light) reach the 0.5 threshold; allow one more for numeric drift
    across onnxruntime versions (the highest benign scores are 0.667 and 0.520)."""
    from research.evals.sensitive import SensitiveConfig, run

    bank = tmp_path / "bank"
    bank.mkdir()
    (bank / "rocket.jpg").write_bytes((REPO / "samples" / "rocket.jpg").read_bytes())
    empty = tmp_path / "none"
    empty.mkdir()
    res = run(SensitiveConfig(benign=[str(empty)], bank=str(bank), out=str(tmp_path / "out"), generated=210,
                              skin=150, timing_limit=0), seed=0)
    fams = res.data["families"]
    generated = sum(v["classifier"]["k"] for k, v in fams.items() if k.startswith("generated/"))
    skin = {k.split("/")[1]: v["classifier"]["k"] for k, v in fams.items() if k.startswith("skin-synthetic/")}
    assert fams["all"]["n"] == 360 and generated == 0
    assert skin["light"] == 0 and 1 <= sum(skin.values()) <= 3
