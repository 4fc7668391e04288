"""Each algorithm's facts live in ``scanner/hashers/spec.py``; no gate or match-distance literal elsewhere.

The literal scan (``test_no_gate_or_distance_literal_outside_the_specs``) parses every module of ``client/``,
``relay/``, ``scanner/`` and ``research/`` (docstrings and comments are not code and are not read) and reports
an integer literal as a *gate or distance literal* when it appears in one of these places:

1. a comparison (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``) whose other operands name a quality,
   distance or threshold;
2. the value of an assignment, annotated assignment, keyword argument, parameter default or dict entry whose
   target/name/key names a quality, distance or threshold (``min_quality=50``, ``PDQ_THRESHOLD = 31``,
   ``{"threshold": 31}``), or the ``default=`` of a call whose other arguments name one
   (``add_argument("--target-distance", default=31)``);
3. a positional argument of a call to a function whose name says it takes a distance (``recall_at(31)``);
4. a string literal that is a SQL or text comparison of a quality with a number (``"quality >= 50"``).

"Names a quality, distance or threshold" means: one of the words ``quality``, ``distance``/``distances``,
``threshold``/``thresholds``, ``thr``, ``gate``, ``dist`` or ``bits`` is a word of an identifier, attribute
or string in that place (words are split at ``_``, ``-``, ``.``, spaces and case changes). The literals are
the gate **50** and the match distances **31** (PDQ) and **25** (the learned hash), anywhere in such a place,
and **8** (the 64-bit baselines' distance) when it stands alone (not inside a tuple or list: a sweep of
distances such as ``(0, 8, 16, 24, ...)`` lists points on a scale, not the rule; next to ``bits`` alone, 8 is
a byte). An ordering comparison (``<``, ``<=``, ``>``, ``>=``) with **31** is caught whatever it names: 31
means PDQ's distance here. The only file allowed to hold them is ``scanner/hashers/spec.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from scanner.hashers.registry import get_hasher, hasher_names
from scanner.hashers.spec import PDQ, SPECS, find_spec, quality_gate, scaled_match_distance, spec_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("client", "relay", "scanner", "research")
ALLOWED = {Path("scanner/hashers/spec.py")}

CONTEXT_WORDS = frozenset(
    {"quality", "distance", "distances", "threshold", "thresholds", "thr", "gate", "dist", "bits"}
)
QUALITY_WORDS = frozenset({"quality", "gate"})
WIDTH_WORDS = frozenset({"bits"})
GATE_LITERALS = frozenset({50})
DISTANCE_LITERALS = frozenset({31, 25})
LONE_DISTANCE_LITERALS = frozenset({8})
DISTANCE_FUNCTIONS = frozenset({"recall_at"})
ALWAYS_DISTANCE_LITERALS = frozenset({31})
_SQL_GATE = re.compile(r"quality\s*(<=|>=|<|>|=)\s*(\d+)", re.IGNORECASE)


def _words(text: str) -> set[str]:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return {w for w in re.split(r"[^A-Za-z0-9]+", text.lower()) if w}


def _names(node: ast.AST) -> set[str]:
    """Words of every identifier, attribute and short string in ``node``."""
    words: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            words |= _words(sub.id)
        elif isinstance(sub, ast.Attribute):
            words |= _words(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) <= 80:
            words |= _words(sub.value)
        elif isinstance(sub, ast.arg):
            words |= _words(sub.arg)
    return words


def _int_literals(node: ast.AST, *, lone_ok: bool) -> list[tuple[int, int]]:
    """(value, line) of int literals in ``node``; ``lone_ok``: ``node`` itself is the whole value."""
    found: list[tuple[int, int]] = []

    def visit(n: ast.AST, in_sequence: bool) -> None:
        if isinstance(n, ast.Constant) and type(n.value) is int:
            found.append((n.value if not in_sequence else -n.value, n.lineno))
        elif isinstance(n, ast.UnaryOp):
            return
        elif isinstance(n, ast.Tuple | ast.List | ast.Set):
            for elt in n.elts:
                visit(elt, True)
        elif isinstance(n, ast.BinOp | ast.Call | ast.IfExp | ast.BoolOp):
            for child in ast.iter_child_nodes(n):
                visit(child, in_sequence)

    visit(node, not lone_ok)
    return found


def _offences(values: list[tuple[int, int]], words: set[str]) -> list[tuple[int, int]]:
    if not words & CONTEXT_WORDS:
        return []
    about_quality = bool(words & QUALITY_WORDS)
    about_distance = bool((words - QUALITY_WORDS - WIDTH_WORDS) & CONTEXT_WORDS)
    about_width = bool(words & WIDTH_WORDS)
    out = []
    for signed, line in values:
        value, lone = abs(signed), signed > 0
        if about_width and not about_distance:  # "bits": a width, unless a distance is named too
            distance_literal = value in DISTANCE_LITERALS
        else:
            distance_literal = value in DISTANCE_LITERALS or (lone and value in LONE_DISTANCE_LITERALS)
        distance_rule = (about_distance or about_width) and distance_literal
        if (about_quality and value in GATE_LITERALS) or distance_rule:
            out.append((value, line))
    return out


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    ids.add(id(stmt.value))
    return ids


def scan_source(source: str) -> list[tuple[int, int]]:
    """(literal, line) of every gate or distance literal in ``source`` (the rule in the module docstring)."""
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    found: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in node.ops):
                # 31 means PDQ's match distance in this code base: an ordering comparison with it is the rule.
                for operand in operands:
                    found += [(v, line) for v, line in _int_literals(operand, lone_ok=True)
                              if v in ALWAYS_DISTANCE_LITERALS]
            for i, operand in enumerate(operands):
                others: set[str] = set()
                for j, other in enumerate(operands):
                    if j != i:
                        others |= _names(other)
                found += _offences(_int_literals(operand, lone_ok=True), others)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            words: set[str] = set()
            for target in targets:
                words |= _names(target)
            found += _offences(_int_literals(node.value, lone_ok=True), words)
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            for kw in node.keywords:
                if kw.arg is None:
                    continue
                kwords = _words(kw.arg)
                if kw.arg == "default":
                    for arg in node.args:
                        kwords |= _names(arg)
                    for other in node.keywords:
                        if other.arg == "dest":
                            kwords |= _names(other.value)
                found += _offences(_int_literals(kw.value, lone_ok=True), kwords)
            if fname in DISTANCE_FUNCTIONS:
                for arg in node.args:
                    found += _offences(_int_literals(arg, lone_ok=True), {"distance"})
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            with_defaults = positional[len(positional) - len(node.defaults) :]
            for arg, default in zip(with_defaults, node.defaults, strict=True):
                found += _offences(_int_literals(default, lone_ok=True), _words(arg.arg))
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if kw_default is not None:
                    found += _offences(_int_literals(kw_default, lone_ok=True), _words(arg.arg))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    found += _offences(_int_literals(value, lone_ok=True), _names(key))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            for match in _SQL_GATE.finditer(node.value):
                if int(match.group(2)) in GATE_LITERALS:
                    found.append((int(match.group(2)), node.lineno))
    return sorted(set(found), key=lambda f: (f[1], f[0]))


def test_the_scan_catches_what_it_documents() -> None:
    """Each documented place is caught; sweeps, sizes and unrelated numbers are not."""
    caught = {
        "if h.quality < 50: pass": 50,
        "ok = distance <= 31": 31,
        "ok = distances_to_many(a, b).min() <= 25": 25,
        "PDQ_THRESHOLD = 31": 31,
        "def f(*, min_quality: int = 50): pass": 50,
        "def f(threshold=31): pass": 31,
        "f(min_quality=50)": 50,
        "p.add_argument('--target-distance', type=int, default=31)": 31,
        "x = {'threshold': 31}": 31,
        "r = cal.recall_at(31)": 31,
        "db.execute('SELECT COUNT(*) FROM entries WHERE quality < 50')": 50,
        "match_distance = 8": 8,
        "ok = r['pdq_quality'] >= 50": 50,
        "NEAR_DUPLICATE_BITS = 31": 31,
        "rate = float((pairs <= 31).mean())": 31,
    }
    for source, literal in caught.items():
        assert [v for v, _ in scan_source(source)] == [literal], source
    passed = [
        "DISTANCES = (0, 8, 16, 24, 40)",
        "width = 8",
        "img.save(buf, 'JPEG', quality=95)",
        "MAX_BLOB = 25 * 1024 * 1024",
        "def f():\n    '''quality >= 50 and distance <= 31'''",
        "share = 0.25",
        "if len(rows) > 50: pass",
        "ok = distance <= spec.match_distance",
        "HEADER_BITS = 8",
        "if day == 31: pass",
    ]
    for source in passed:
        assert scan_source(source) == [], source


def test_no_gate_or_distance_literal_outside_the_specs() -> None:
    offences = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel in ALLOWED:
                continue
            for value, line in scan_source(path.read_text(encoding="utf-8")):
                offences.append(f"{rel}:{line}: literal {value}")
    assert not offences, "gate/distance literals outside scanner/hashers/spec.py:\n" + "\n".join(offences)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_facts(name: str) -> None:
    spec = spec_for(name)
    assert spec.name == name and spec.bits % 8 == 0 and 0 < spec.match_distance < spec.bits
    zero = bytes(spec.bits // 8)
    assert spec.parse_hex(spec.format_hex(zero).upper()) == zero
    assert spec.distance(zero, b"\xff" * len(zero)) == spec.bits
    assert spec.is_match(spec.match_distance) and not spec.is_match(spec.match_distance + 1)
    assert spec.passes_quality(spec.min_quality) and not spec.passes_quality(spec.min_quality - 1)
    assert not spec.passes_quality(None)
    with pytest.raises(ValueError):
        spec.parse_hex("zz" * (spec.bits // 8))
    with pytest.raises(ValueError):
        spec.parse_hex("ab" * (spec.bits // 8 + 1) + "a")
    assert quality_gate(name) == spec.min_quality


def test_pdq_is_threatexchange_and_the_baselines_scale_it() -> None:
    assert (PDQ.bits, PDQ.match_distance, PDQ.min_quality) == (256, 31, 50)
    assert scaled_match_distance(64) == spec_for("phash").match_distance == 8
    assert (spec_for("onnx").bits, spec_for("onnx").match_distance) == (256, 25)
    assert find_spec("nope") is None
    with pytest.raises(KeyError):
        spec_for("nope")
    assert quality_gate("nope") == PDQ.min_quality


def test_every_builtin_hasher_carries_its_spec() -> None:
    for name in ("pdq", "phash", "dhash", "ahash"):
        hasher = get_hasher(name)
        assert hasher.algorithm is spec_for(name) and hasher.bits == hasher.algorithm.bits
    assert set(hasher_names()) >= {"pdq", "phash", "dhash", "ahash", "onnx"}


@pytest.mark.parametrize("name", ["pdq", "phash", "dhash", "ahash", "onnx"])
def test_hashes_round_trip_through_their_spec(name: str) -> None:
    """Every registered hasher's output parses, formats and compares through its own spec."""
    rng = np.random.default_rng(12)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8).repeat(8, axis=0).repeat(8, axis=1)
    hasher = get_hasher(name)
    spec = hasher.algorithm
    result = hasher.hash_rgb(rgb)
    assert result.algo == spec.name and result.bits == spec.bits == len(result.hash) * 8
    assert spec.parse_hex(spec.format_hex(result.hash)) == result.hash and spec.check_hex(result.hex) is None
    assert spec.distance(result.hash, result.hash) == 0
    flipped = bytes([result.hash[0] ^ 0xFF]) + result.hash[1:]
    assert spec.distance(result.hash, flipped) == spec.distance(flipped, result.hash) == 8


def test_learned_hash_spec_comes_from_its_model() -> None:
    from scanner.hashers.onnx import OnnxHasher

    shipped = OnnxHasher()
    assert shipped.algorithm == spec_for("onnx")
    narrow = OnnxHasher(bits=128)
    assert (narrow.algorithm.bits, narrow.algorithm.match_distance) == (128, scaled_match_distance(128))
    assert narrow.algorithm.check_hex("ab" * 16) is None and spec_for("onnx").check_hex("ab" * 4) is not None


def test_a_hasher_without_its_spec_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.hashers import registry

    class NoSpec:
        name = "nospec"
        bits = 64

    class WrongWidth:
        name = "wrongwidth"
        bits = 128
        algorithm = spec_for("phash").with_bits(64)

    monkeypatch.setitem(registry._FACTORIES, "nospec", NoSpec)
    monkeypatch.setitem(registry._FACTORIES, "wrongwidth", WrongWidth)
    for name in ("nospec", "wrongwidth"):
        with pytest.raises(TypeError, match="algorithm spec"):
            get_hasher(name)
