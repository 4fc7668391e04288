"""Real processes for the authority tests: a relay and `authority serve` as `pocketscan` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from research.bench_rollout import relay_process, serve_process

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def pocketscan(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `pocketscan` CLI in a child process."""
    proc = subprocess.run(
        [sys.executable, "-m", "client.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=_env(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pocketscan {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("POCKETSCAN_PASSPHRASE", None)
    return env


def wait_for(cond: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``cond()`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def read_log(path: Path) -> str:
    with open(path) as fh:
        return fh.read()


def jpeg_copy(src: Path, dst: Path, quality: int = 70) -> Path:
    from PIL import Image

    with Image.open(src) as im:
        im.convert("RGB").save(dst, "JPEG", quality=quality)
    return dst


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` that contains any of ``needles``."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(str(path))
    return hits


__all__ = [
    "SAMPLES",
    "files_containing",
    "jpeg_copy",
    "pocketscan",
    "read_log",
    "relay_process",
    "serve_process",
    "wait_for",
]
