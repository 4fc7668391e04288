"""`pocketscan classify`: the command-line contract, with the stand-in model and without the extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")

from tests.scanner.standin_classifier import build_standin_detector, solid_png

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli.main", "classify", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=env)


def test_files_and_folders_in_input_order_with_error_lines(tmp_path: Path) -> None:
    model = build_standin_detector(tmp_path / "m")
    folder = tmp_path / "photos"
    solid_png(folder / "b_blue.png", (0, 0, 255))
    solid_png(folder / "a_red.png", (255, 0, 0))
    solid_png(folder / ".hidden.png", (255, 0, 0))
    (folder / "notes.txt").write_text("not an image, and not an image suffix")
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    single = solid_png(tmp_path / "single.png", (255, 0, 0))
    proc = _run("--model", str(model), str(single), str(folder), str(tmp_path / "missing.png"))
    assert proc.returncode == 2
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(r["path"]).name for r in lines] == ["single.png", "a_red.png", "b_blue.png", "broken.jpg",
                                                     "missing.png"]
    assert {k: lines[0][k] for k in ("label", "model")} == {"label": "sensitive", "model": "standin-detector"}
    assert set(lines[0]) == {"path", "label", "score", "model"} and 0.99 < lines[0]["score"] <= 1
    assert lines[2]["label"] == "ok" and lines[2]["score"] == 0.0
    assert set(lines[3]) == {"path", "error"} and "broken.jpg" in lines[3]["error"]
    assert "no such file" in lines[4]["error"]
    assert proc.stderr == ""


def test_all_good_exits_zero_and_threshold_overrides(tmp_path: Path) -> None:
    model = build_standin_detector(tmp_path / "m")
    img = solid_png(tmp_path / "pink.png", (150, 0, 120), (32, 32))
    proc = _run("--model", str(model), str(img))
    assert proc.returncode == 0 and json.loads(proc.stdout)["label"] == "ok"
    proc = _run("--model", str(model), "--threshold", "0.3", str(img))
    assert proc.returncode == 0 and json.loads(proc.stdout)["label"] == "sensitive"


def test_bad_model_is_one_line_exit_2(tmp_path: Path) -> None:
    img = solid_png(tmp_path / "x.png", (1, 2, 3))
    for args in (("--model", str(tmp_path / "nope.onnx")), ("--model", "nonsense")):
        proc = _run(*args, str(img))
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("pocketscan classify: ")
        assert "Traceback" not in proc.stderr


def test_without_the_extra_one_line_says_how_to_install(tmp_path: Path) -> None:
    img = solid_png(tmp_path / "x.png", (1, 2, 3))
    # hide the installed nudenet distribution: a sitecustomize that makes the metadata lookup fail
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "from importlib import metadata\n"
        "_real = metadata.distribution\n"
        "def _hidden(name):\n"
        "    if name == 'nudenet':\n"
        "        raise metadata.PackageNotFoundError(name)\n"
        "    return _real(name)\n"
        "metadata.distribution = _hidden\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(REPO)])}
    proc = _run(str(img), env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "pip install 'pocketscan[sensitive]'" in lines[0]
