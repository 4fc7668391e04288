"""`pocketscan demo` in a real terminal (tmux): type a message and an /image command, read the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)"),
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = screen(session)
        if text in shown:
            return shown
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not on screen after {timeout} s; screen was:\n{shown}")


def test_demo_in_tmux(tmp_path: Path) -> None:
    session = f"pocketscan-test-{uuid.uuid4().hex[:8]}"
    demo_dir = tmp_path / "demo"
    # Textual draws on stderr: leave it on the terminal
    env_cmd = (f"cd {tmp_path} && TERM=xterm-256color {sys.executable} -m client.cli.main demo "
               f"--dir {demo_dir}")
    repo = Path(__file__).resolve().parents[2]
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "32", "-e", f"PYTHONPATH={repo}",
         "-e", f"HOME={os.environ.get('HOME', '/root')}", env_cmd)
    try:
        wait_for(session, "demo bot", timeout=180)  # generous: the CI machine may be loaded
        wait_for(session, "connected")
        tmux("send-keys", "-t", session, "-l", "hello bot")
        tmux("send-keys", "-t", session, "Enter")
        wait_for(session, "bot: you said")
        tmux("send-keys", "-t", session, "-l", "/image rocket.jpg")
        tmux("send-keys", "-t", session, "Enter")
        shown = wait_for(session, "BLOCKED")
        assert "matches the hash bank" in shown
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the demo did not quit on ctrl+q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
