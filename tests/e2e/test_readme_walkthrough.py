"""The README's walkthroughs run as written: extracted from README.md and run by bash in a temporary folder.

A walkthrough is every ```bash block directly under a ``<!-- walkthrough: NAME -->`` comment; blocks of the
same NAME run in order in one bash process (they share variables such as ``$AUTH``) with ``set -euo
pipefail``, in a fresh folder outside the repository, with ``POCKETSCAN_PORT`` set to a free loopback port.
Background jobs the blocks start (the relay) are killed by a bash ``EXIT`` trap, and the whole process
group by the test if bash itself has to be stopped. Unmarked blocks are not run; a static check makes sure
no shell block of the README depends on the repository root (``samples/`` paths).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MARK = re.compile(r"<!--\s*walkthrough:\s*([\w-]+)\s*-->")
PREAMBLE = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT\n"


def walkthroughs(text: str) -> dict[str, list[str]]:
    """NAME -> the bash blocks marked with it, in README order."""
    lines = text.splitlines()
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        mark = MARK.fullmatch(lines[i].strip())
        if mark and i + 1 < len(lines) and lines[i + 1].strip() == "```bash":
            end = lines.index("```", i + 2)
            found.setdefault(mark.group(1), []).append("\n".join(lines[i + 2:end]))
            i = end
        i += 1
    return found


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.S)


def run_walkthrough(name: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    script = PREAMBLE + "\n".join(walkthroughs(README.read_text())[name]) + "\n"
    (workdir / f"{name}.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETSCAN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this pocketscan
    env["POCKETSCAN_PORT"] = str(free_port())
    proc = subprocess.Popen(["bash", f"{name}.sh"], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:  # whatever happened, nothing the walkthrough started outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def json_objects(out: str) -> list[dict[str, Any]]:
    objects = []
    for line in out.splitlines():
        if line.startswith("{"):
            objects.append(json.loads(line))
    return objects


def test_readme_has_the_walkthroughs_and_stays_a_page() -> None:
    text = README.read_text()
    found = walkthroughs(text)
    assert set(found) >= {"headless", "research"}
    headless = "\n".join(found["headless"])
    for step in ("authority keygen", "pocketscan relay", "bank import", "snapshot build", "snapshot publish",
                 "--profile alice", "--profile bob", "--text", "coffee.jpg", "rocket.jpg", "inbox"):
        assert step in headless, step
    assert len(text.splitlines()) <= 250


def test_no_shell_block_depends_on_the_repository_root() -> None:
    for block in shell_blocks(README.read_text()):
        assert not re.search(r"(?<![\w/-])samples/", block), f"use $(pocketscan samples ...): {block}"


@pytest.mark.slow
def test_headless_walkthrough_runs_as_written(tmp_path: Path) -> None:
    done = run_walkthrough("headless", tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    objects = json_objects(done.stdout)
    sends = [o for o in objects if "status" in o]
    assert [o["status"] for o in sends] == ["sent", "sent", "blocked"], sends
    assert sends[1]["verdict"] == "no_match" and sends[2]["verdict"] == "match"
    assert "votes (" in sends[2]["reason"] and "needed)" in sends[2]["reason"]
    inbox = [o for o in objects if o.get("type") in ("text", "image")]
    assert [(m["type"], m.get("text")) for m in inbox] == [("text", "hi bob"), ("image", None)]
    assert Path(inbox[1]["path"]).is_file() and (tmp_path / "bob" / "media") in Path(inbox[1]["path"]).parents
    scans = [o for o in objects if o.get("verdict") in ("match", "no_match") and "path" in o]
    assert {Path(o["path"]).name for o in scans if o["verdict"] == "match"} == {"rocket.jpg", "astronaut.jpg"}
    stats = next(o for o in objects if "entries" in o)
    assert stats["entries"] == 2 and stats["first_added_at"].endswith("Z")


@pytest.mark.slow
def test_research_walkthrough_runs_as_written(tmp_path: Path) -> None:
    done = run_walkthrough("research", tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = (tmp_path / "out" / "fpr" / "report.md").read_text()
    assert "too small" in report and "3/" in report
    assert (tmp_path / "out" / "fpr" / "report.html").is_file()
