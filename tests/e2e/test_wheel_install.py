"""pocketscan works installed from a wheel, away from any checkout (issue 12).

Builds the wheel from a copy of the sources, installs it (no dependencies, no index) into a fresh
virtual environment, and runs ``pocketscan demo --check`` and ``pocketscan hash`` from a temporary
folder. The dependencies come from the interpreter running the tests (``--system-site-packages`` plus a
``.pth`` line for this environment's site-packages), never from the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "samples", "client", "relay", "scanner", "research")

pytestmark = pytest.mark.slow


def _run(*cmd: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "POCKETSCAN_SAMPLES", "PYTHONHOME"}}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{tail}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its ``bin`` folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", root / "dist", src, cwd=root)
    wheels = sorted((root / "dist").glob("pocketscan-*.whl"))
    assert len(wheels) == 1
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", venv, cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=root).stdout.strip())
    # The dependencies of the environment running the tests (a venv's site-packages is no system one).
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_pocketscan_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheels[0], cwd=root)
    return venv / "bin"


def test_the_installed_packages_come_from_the_venv_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = _run(installed / "python", "-c",
               "import client, relay, scanner, research, sys; "
               "print('\\n'.join(m.__file__ for m in (client, relay, scanner, research)))", cwd=tmp_path)
    venv = installed.parent.resolve()
    for module_file in out.stdout.split():
        resolved = Path(module_file).resolve()
        assert resolved.is_relative_to(venv), resolved
        assert not resolved.is_relative_to(REPO.resolve()), resolved


def test_demo_check_runs_from_another_folder(installed: Path, tmp_path: Path) -> None:
    out = _run(installed / "pocketscan", "demo", "--check", cwd=tmp_path)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["relay"].startswith("ws://127.0.0.1:")
    assert len(info["banked"]) == 3 and info["clean"]


def test_hash_of_an_installed_sample_from_another_folder(installed: Path, tmp_path: Path) -> None:
    sample = Path(_run(installed / "pocketscan", "samples", "coffee.jpg", cwd=tmp_path).stdout.strip())
    assert sample.resolve().is_relative_to(installed.parent.resolve())  # the wheel's copy, not samples/
    photo = tmp_path / "photo.jpg"
    shutil.copy2(sample, photo)
    out = _run(installed / "pocketscan", "hash", "photo.jpg", cwd=tmp_path)
    row = json.loads(out.stdout)
    assert row["path"] == "photo.jpg" and row["algo"] == "pdq" and len(row["hash"]) == 64
    reference = _run(sys.executable, "-m", "client.cli.main", "hash", str(REPO / "samples" / "coffee.jpg"),
                     cwd=REPO)
    assert row["hash"] == json.loads(reference.stdout)["hash"]
    assert _run(installed / "pocketscan", "--help", cwd=tmp_path).stdout.count("samples") >= 1
