"""The package graph: who may import whom (issue 12), checked on the source with ``ast``.

scanner sits at the bottom, relay may use scanner, client may use scanner and relay's protocol, research
sits on top. Every import counts: module level, inside functions and under ``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("client", "relay", "scanner", "research")

#: package -> packages it must never import (in any form).
FORBIDDEN = {
    "scanner": {"client", "relay", "research"},
    "relay": {"client", "research"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` names (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package_parts = list(path.relative_to(REPO).with_suffix("").parts)
    if package_parts[-1] == "__init__":
        package_parts.pop()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _violations(package: str, banned: set[str] | None = None, prefix: str | None = None) -> list[str]:
    bad = []
    for path in _sources(package):
        for line, module in _imports(path):
            top = module.split(".")[0]
            under_prefix = prefix is not None and (module == prefix or module.startswith(prefix + "."))
            if (banned and top in banned) or under_prefix:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return sorted(set(bad))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_import_nothing_above_them(package: str) -> None:
    assert _violations(package, banned=FORBIDDEN[package]) == []


@pytest.mark.parametrize("package", ["relay", "scanner", "research"])
def test_nothing_outside_client_imports_client_cli(package: str) -> None:
    assert _violations(package, prefix="client.cli") == []


#: Each package's command-line modules: no other package imports them, not even for typing.
CLI_MODULES = {
    "client": ("client.cli",),
    "relay": ("relay.commands",),
    "scanner": ("scanner.commands",),
    "research": ("research.commands", "research.command_registry"),
}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_another_packages_cli(package: str) -> None:
    others = [prefix for owner, prefixes in CLI_MODULES.items() if owner != package for prefix in prefixes]
    assert [v for prefix in others for v in _violations(package, prefix=prefix)] == []


def test_the_import_scanner_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    """The checker itself: a TYPE_CHECKING import and a lazy one are both seen, relative ones resolved."""
    probe = REPO / "scanner" / "commands" / "hashing.py"
    modules = {module for _, module in _imports(probe)}
    assert "scanner.commands.registry.CommandRegistry" in modules  # under TYPE_CHECKING
    assert "scanner.hashers.registry.hasher_names" in modules  # inside a function


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_loading_the_relay_server_loads_no_client_module() -> None:
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts) for p in _sources("relay"))
    loaded = _loaded_after("import " + ", ".join(m.removesuffix(".__init__") for m in modules))
    assert {"relay.serve", "relay.ws", "relay.store_redis", "relay.commands"} <= loaded
    assert sorted(m for m in loaded if m.split(".")[0] in {"client", "research"}) == []


def test_help_loads_no_numpy() -> None:
    loaded = _loaded_after(
        "import contextlib, io\n"
        "from client.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): main(['--help'])"
    )
    assert "client.cli.main" in loaded and "scanner.commands.hashing" in loaded
    heavy = {"numpy", "PIL", "scipy", "textual", "onnxruntime", "matplotlib"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []


def test_installed_command_entry_points_match_pyproject() -> None:
    """A stale install (pyproject changed, not reinstalled) would silently drop commands: say so."""
    from client.cli.main import ENTRY_POINT_GROUP, command_entry_points

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][ENTRY_POINT_GROUP]
    own = [ep for ep in command_entry_points() if ep.dist and ep.dist.metadata["Name"] == "pocketscan"]
    installed = {ep.name: ep.value for ep in own}
    assert installed == declared, "pyproject.toml's commands differ from the installed ones: pip install -e ."


def test_every_command_module_is_registered() -> None:
    """A module with ``register(registry)`` that no entry point names is a command nobody can run."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    named = {value.split(":")[0] for value in declared["pocketscan.commands"].values()}
    registering = set()
    for package in PACKAGES:
        for path in _sources(package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name == "register" and node.args.args and (
                    node.args.args[0].arg == "registry"
                ):
                    registering.add(".".join(path.relative_to(REPO).with_suffix("").parts))
    assert registering - named == set()
    assert named - registering == set()


def test_no_test_module_imports_another_test_module() -> None:
    """Shared helpers live in conftest.py or helper modules, never in a test_*.py another test imports."""
    bad = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for line, module in _imports_in_tests(path):
            if module.split(".")[-1].startswith("test_") or ".test_" in module:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert bad == []


def _imports_in_tests(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("tests")):
            found.append((node.lineno, node.module or ""))
            found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names
                         if a.name.startswith("test_"))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("tests"))
    return found


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_json_is_the_same_flag_everywhere() -> None:
    """``--json`` switches a command's output to JSON: a flag taking no value, in every command."""
    from client.cli.main import build_parser

    seen = []
    for prog, parser in _parsers(build_parser()):
        for action in parser._actions:
            if "--json" in action.option_strings:
                seen.append(prog)
                assert action.nargs == 0 and action.const is True and action.default is False, prog
    assert len(seen) >= 15


def test_no_importorskip_of_a_module_of_this_repository() -> None:
    """Our own modules are imported plainly: an import error must fail, never skip a test silently."""
    bad = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "importorskip" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).split(".")[0] in PACKAGES):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.args[0].value}")
    assert bad == []


_PARENTS = r"((?:\.parent(?!s))*)"
_UP = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?" + _PARENTS + r"(?:\.parents\[(\d+)\])?" + _PARENTS)


def _levels_up(line: str) -> int:
    match = _UP.search(line)
    if match is None:
        return 0
    dots = (match.group(1) + match.group(3)).count(".parent")
    return dots + (int(match.group(2)) + 1 if match.group(2) is not None else 0)


#: Modules that look for a checkout's folder first and fall back to the installed copy.
_MAY_LOOK_FOR_A_CHECKOUT = {"client/samples.py"}  # samples/ (editable install), then share/pocketscan/samples


def test_no_runtime_code_assumes_the_checkout() -> None:
    """Installed from a wheel there is no repository around the packages: no path climbs out of them
    (``samples/`` comes from :mod:`client.samples`; ``../shared`` defaults are relative to the working
    directory, never to the source file)."""
    bad = []
    for package in PACKAGES:
        for path in _sources(package):
            if path.relative_to(REPO).as_posix() in _MAY_LOOK_FOR_A_CHECKOUT:
                continue
            depth = len(path.relative_to(REPO).parts) - 1  # research/x.py: 1 level below the repository
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _levels_up(line) > depth:
                    bad.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert bad == []


def test_the_checkout_path_rule_counts_levels() -> None:
    assert _levels_up("Path(__file__).resolve().parents[1]") == 2
    assert _levels_up("Path(__file__).resolve().parent.parent / 'x'") == 2
    assert _levels_up("Path(__file__).parent") == 1
    assert _levels_up("x = 1") == 0


def test_without_installed_commands_the_cli_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import client.cli.main as cli

    monkeypatch.setattr(cli, "distributions", lambda: [])
    assert cli.main(["--help"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pocketscan: no 'pocketscan.commands' entry points found")


class _FakeDist:
    def __init__(self, name: str, entries: dict[str, str], path: str = "site-packages/x.dist-info") -> None:
        from importlib.metadata import EntryPoint

        self._path = Path(path)
        self.metadata = {"Name": name}
        self.entry_points = [EntryPoint(n, v, "pocketscan.commands") for n, v in entries.items()]


def test_entry_points_own_in_name_order_then_plugins_and_stale_metadata_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import client.cli.main as cli

    dists = [
        _FakeDist("pocketscan", {}),  # a stale pocketscan.egg-info in a checkout: no commands declared
        _FakeDist("pocketscan", {"005-stale": "gone:register"}, "pocketscan.egg-info"),  # an older build's
        _FakeDist("zz-plugin", {"extra": "zz_plugin.cli:register"}),
        _FakeDist("pocketscan", {"020-bank": "scanner.commands.bank:register",
                                 "010-hash": "scanner.commands.hashing:register"}),
        _FakeDist("pocketscan", {"010-old": "old.module:register"}),  # shadowed by the first one found
        _FakeDist("aa-plugin", {"another": "aa_plugin.cli:register"}),
    ]
    monkeypatch.setattr(cli, "distributions", lambda: dists)
    assert [ep.name for ep in cli.command_entry_points()] == ["010-hash", "020-bank", "another", "extra"]


#: The longest a function may be (issue 12: research as small typed steps; the same for every package).
MAX_FUNCTION_LINES = 80

#: Functions still longer than MAX_FUNCTION_LINES, each with the reason; remove an entry once it is split.
LONG_FUNCTION_ALLOWLIST: dict[str, str] = {
}


def _function_lengths() -> dict[str, int]:
    """``path::Class.function`` -> lines (decorators excluded) of every function in the four packages."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str, rel: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                lengths[f"{rel}::{name}"] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name + ".", rel)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", rel)
            else:
                visit(child, prefix, rel)

    for package in PACKAGES:
        for path in _sources(package):
            rel = path.relative_to(REPO).as_posix()
            visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "", rel)
    return lengths


def test_no_function_is_longer_than_80_lines_outside_the_allowlist() -> None:
    long = {name: n for name, n in _function_lengths().items() if n > MAX_FUNCTION_LINES}
    unlisted = sorted(f"{name}: {n} lines" for name, n in long.items() if name not in LONG_FUNCTION_ALLOWLIST)
    assert not unlisted, f"functions over {MAX_FUNCTION_LINES} lines (split them): " + "; ".join(unlisted)


def test_the_long_function_allowlist_has_no_stale_entries() -> None:
    lengths = _function_lengths()
    stale = sorted(f"{name}: {lengths.get(name, 'gone')}"
                   for name in LONG_FUNCTION_ALLOWLIST if lengths.get(name, 0) <= MAX_FUNCTION_LINES)
    assert not stale, "now within the limit, drop from LONG_FUNCTION_ALLOWLIST: " + "; ".join(stale)


#: Modules (globs under the repository) whose classes have at most MAX_PUBLIC_METHODS public methods
#: (issue 12: a façade over components with one job each). Append new entries at the end.
SMALL_CLASS_MODULES = [
    "client/store/*.py",
    "client/core/*.py",
]
MAX_PUBLIC_METHODS = 25


def _public_methods(cls: ast.ClassDef) -> list[str]:
    """The names of the public methods (properties included) a class body defines."""
    return [node.name for node in cls.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_")]


def test_no_class_has_more_than_25_public_methods() -> None:
    paths = sorted({p for pattern in SMALL_CLASS_MODULES for p in REPO.glob(pattern)})
    assert paths, "SMALL_CLASS_MODULES matches no file"
    too_big = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and len(_public_methods(node)) > MAX_PUBLIC_METHODS:
                too_big.append(f"{path.relative_to(REPO)}: {node.name} has {len(_public_methods(node))}")
    assert not too_big, "classes with more than 25 public methods:\n" + "\n".join(too_big)


def test_the_public_method_count_sees_properties_and_skips_private_ones() -> None:
    tree = ast.parse("class C:\n    @property\n    def a(self): ...\n    async def b(self): ...\n"
                     "    def _c(self): ...\n    def __init__(self): ...\n    x = 1\n")
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef) and _public_methods(cls) == ["a", "b"]
