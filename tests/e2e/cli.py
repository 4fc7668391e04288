"""Helpers of the CLI end-to-end tests: run `pocketscan` as a subprocess, start a real relay process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.relay.relayfix import RelayProcess

POCKETSCAN = [sys.executable, "-c", "from client.cli.main import main; raise SystemExit(main())"]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pocketscan(*args: str, cwd: Path, timeout: float = 120.0) -> tuple[int, str, str, float]:
    """Run one command; returns (exit status, stdout, stderr, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("POCKETSCAN_PROFILE", None)
    started = time.monotonic()
    proc = subprocess.run([*POCKETSCAN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Relay(RelayProcess):
    """A real `pocketscan relay` process on a given loopback port (the later ``--port`` wins)."""

    def __init__(self, port: int, db: Path, *extra: str) -> None:
        super().__init__("--port", str(port), "--db", str(db), *extra)
