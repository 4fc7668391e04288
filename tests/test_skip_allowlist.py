"""The skip allowlist (tests/conftest.py): a skip for an unlisted reason fails the session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_SUITE = '''
import pytest
pytest.importorskip("pocketscan_no_such_module_for_the_allowlist")
'''
_TESTS = '''
import pytest

def test_passes():
    pass

def test_needs_redis():
    pytest.skip("no Redis: install redis-server")

@pytest.mark.xfail(reason="expected failures are no skips")
def test_expected_failure():
    assert False
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("POCKETSCAN_SKIP_ALLOWLIST", raising=False)  # .ci/run sets them for the outer run
    monkeypatch.delenv("POCKETSCAN_SKIP_LOG", raising=False)
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_tests=_TESTS, test_module_skip=_SUITE)
    return pytester


def test_unlisted_reasons_fail_the_session_and_are_named(suite: pytest.Pytester) -> None:
    (suite.path / "allow.txt").write_text("# nothing allowed\n\n")
    result = suite.runpytest_subprocess("-p", "no:randomly", "--skip-allowlist", "allow.txt",
                                        "--skip-log", "skips.tsv")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["2 skip(s) for a reason not on allow.txt:*",
                                 "*test_needs_redis: no Redis: install redis-server"])
    logged = (suite.path / "skips.tsv").read_text().splitlines()
    assert len(logged) == 2 and any("pocketscan_no_such_module" in line for line in logged)
    assert not any("xfail" in line or "expected failures" in line for line in logged)


def test_listed_reasons_pass_and_no_option_checks_nothing(suite: pytest.Pytester) -> None:
    (suite.path / "allow.txt").write_text("^no Redis\ncould not import 'pocketscan_no_such_module\n")
    assert suite.runpytest_subprocess("-p", "no:randomly", "--skip-allowlist", "allow.txt").ret == 0
    assert suite.runpytest_subprocess("-p", "no:randomly").ret == 0


def test_the_environment_sets_the_default_allowlist(suite: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`.ci/run` runs the README's plain `python -m pytest` with the allowlist given by the environment."""
    (suite.path / "allow.txt").write_text("^no Redis\n")
    monkeypatch.setenv("POCKETSCAN_SKIP_ALLOWLIST", "allow.txt")
    result = suite.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 skip(s) for a reason not on allow.txt:*"])


def test_the_ci_allowlist_parses_and_lists_no_installable_dependency() -> None:
    from tests.conftest import load_allowlist

    patterns = load_allowlist(REPO / "tests" / "skip_allowlist.txt")
    assert all(isinstance(p, re.Pattern) for p in patterns)
    for reason in ("no Redis: install redis-server", "tmux is not installed (CI installs it)",
                   "Chromium is not installed", "../shared/corpus is absent",
                   "could not import 'onnx': No module named 'onnx'"):
        assert not any(p.search(reason) for p in patterns), reason
