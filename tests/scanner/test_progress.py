"""Progress goes to stderr only when it is a terminal, never with --json, and never swallows stdout.

Commands run as real subprocesses with stderr on a pseudo-terminal (or a pipe)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.progress import progress, progress_enabled

pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX only")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
POCKETSCAN = [sys.executable, "-c", "from client.cli.main import main; raise SystemExit(main())"]
BAR_MARKS = "━⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def run(*args: str, tty: bool, cwd: Path = REPO) -> tuple[int, str, str]:
    """Run pocketscan; stderr on a pseudo-terminal if ``tty`` (else a pipe). Returns (rc, stdout, stderr)."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "PYTHONPATH": str(REPO)}
    env.pop("NO_COLOR", None)
    if not tty:
        done = subprocess.run([*POCKETSCAN, *args], capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=120, stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen([*POCKETSCAN, *args], stdout=subprocess.PIPE, stderr=slave, cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                err += chunk
            elif proc.poll() is not None:
                break
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.wait(60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err.decode(errors="replace")


def test_a_terminal_sees_a_bar_and_stdout_keeps_the_results() -> None:
    rc, out, err = run("hash", str(SAMPLES), tty=True)
    assert rc == 0
    assert len([json.loads(line) for line in out.splitlines()]) == 8
    assert any(mark in err for mark in BAR_MARKS) and "hashing" in err


def test_scan_results_stay_on_stdout_under_a_bar(tmp_path: Path) -> None:
    rc, pub, _ = run("authority", "keygen", "--out", str(tmp_path / "a.key"), tty=False)
    assert rc == 0
    pub = pub.strip()
    assert run("bank", "import", "--bank", str(tmp_path / "b.sqlite"), str(SAMPLES), tty=False)[0] == 0
    assert run("snapshot", "build", "--bank", str(tmp_path / "b.sqlite"), "--key", str(tmp_path / "a.key"),
               "--out", str(tmp_path / "s.bin"), tty=False)[0] == 0
    rc, out, err = run("scan", "--snapshot", str(tmp_path / "s.bin"), "--pubkey", pub, str(SAMPLES), tty=True)
    assert rc == 0 and [json.loads(line)["verdict"] for line in out.splitlines()] == ["match"] * 8
    assert "scanning" in err


def test_no_terminal_or_json_means_no_progress(tmp_path: Path) -> None:
    rc, out, err = run("hash", str(SAMPLES), tty=False)
    assert rc == 0 and err == "" and len(out.splitlines()) == 8
    rc, out, err = run("research", "generate", "--out", str(tmp_path / "g"), "--count", "7", "--json",
                       tty=True)
    assert rc == 0 and json.loads(out)["count"] == 7
    assert not any(mark in err for mark in BAR_MARKS) and err.strip() == ""


def test_helper_is_silent_when_quiet() -> None:
    assert progress_enabled(quiet=True) is False
    assert list(progress(range(3), total=3, description="x", quiet=True)) == [0, 1, 2]
