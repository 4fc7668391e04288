"""Suite-wide pytest setup: the skip allowlist.

``--skip-allowlist FILE`` (default ``$POCKETSCAN_SKIP_ALLOWLIST``; ``.ci/run`` sets it to
``tests/skip_allowlist.txt``) fails the session when a test
or a whole module skips for a reason that no regular expression in FILE matches: in CI every server and
program the tests need is installed, so a skip there means a broken install, not a missing extra.
``--skip-log FILE`` (default ``$POCKETSCAN_SKIP_LOG``) writes every skip reason seen (one
``nodeid<TAB>reason`` a line) for inspection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pocketscan")
    group.addoption("--skip-allowlist", metavar="FILE",
                    default=os.environ.get("POCKETSCAN_SKIP_ALLOWLIST") or None,
                    help="fail the session when a test skips for a reason no regex in FILE matches")
    group.addoption("--skip-log", metavar="FILE", default=os.environ.get("POCKETSCAN_SKIP_LOG") or None,
                    help="write every skip reason seen to FILE")


def load_allowlist(path: Path) -> list[re.Pattern[str]]:
    """One regular expression a line (searched in the reason); blank lines and ``#`` comments ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [re.compile(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """The reason of a skip (not of an expected failure), or None when the report is no skip."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def unlisted(skips: list[tuple[str, str]], allowed: list[re.Pattern[str]]) -> list[tuple[str, str]]:
    """The skips whose reason no pattern matches."""
    return [(nodeid, reason) for nodeid, reason in skips if not any(p.search(reason) for p in allowed)]


class SkipRecorder:
    """Records every skip (collection and test), then writes and checks them when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.skips: list[tuple[str, str]] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        reason = skip_reason(report)
        if reason is not None:
            self.skips.append((report.nodeid, reason))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        log = self.config.getoption("--skip-log")
        if log:
            Path(log).write_text("".join(f"{n}\t{r}\n" for n, r in self.skips), encoding="utf-8")
        allowlist = self.config.getoption("--skip-allowlist")
        if not allowlist:
            return
        bad = unlisted(self.skips, load_allowlist(Path(allowlist)))
        if not bad:
            return
        lines = [f"{len(bad)} skip(s) for a reason not on {allowlist}:"]
        lines += [f"  {nodeid}: {reason}" for nodeid, reason in bad]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipRecorder(config), "pocketscan-skip-recorder")
