"""Each perceptual algorithm's facts in one place: one :class:`AlgorithmSpec` per algorithm.

Modelled on python-threatexchange's ``SignalType`` (``PdqSignal`` holds its quality threshold and match
distance as class constants and owns hex validation and comparison). A spec carries:

* ``name`` and ``bits`` (hash width);
* ``match_distance``: two hashes match when their Hamming distance is ``<= match_distance``;
* ``min_quality``: the quality gate; hashes of lower quality are never matched nor put in snapshots;
* ``parse_hex`` / ``format_hex`` (lowercase hex, most significant digit first) and ``distance``.

Every other module reads these facts from here (the bank, the matcher, client scanning, research, the
demo); ``tests/scanner/test_algorithm_specs.py`` fails on a gate or distance literal anywhere else.

The specs:

=========  ====  ==============  ===========  ==============================================
name       bits  match distance  quality gate  source
=========  ====  ==============  ===========  ==============================================
pdq        256   31              50           ThreatExchange defaults (``PdqSignal``)
phash      64    8               50           PDQ's 31/256 scaled to 64 bits
dhash      64    8               50           same
ahash      64    8               50           same
onnx       256*  25*             50           the shipped model's sidecar (``scanner/models``)
=========  ====  ==============  ===========  ==============================================

The 64-bit baselines have no quality notion (they report 100), so their gate passes every hash they make;
it applies to imported entries that state a quality. The learned hash's width and distance come from its
model: :meth:`AlgorithmSpec.with_bits` gives the spec of a loaded model (``OnnxHasher.algorithm``); a width
the model was not calibrated for gets PDQ's distance scaled to it (:func:`scaled_match_distance`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "AHASH",
    "DEFAULT_MIN_QUALITY",
    "DHASH",
    "ONNX",
    "PDQ",
    "PHASH",
    "SPECS",
    "AlgorithmSpec",
    "find_spec",
    "match_distance_for",
    "quality_gate",
    "scaled_match_distance",
    "spec_for",
]

_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class AlgorithmSpec:
    """The facts of one perceptual hash algorithm.

    Attributes:
        name: registry name (``pdq``, ``phash``, ``dhash``, ``ahash``, ``onnx``).
        bits: hash width in bits (the default width for algorithms whose width depends on a model).
        match_distance: Hamming distance at or below which two hashes match.
        min_quality: hashes below this quality (0..100) are never matched nor put in snapshots.
        variable_width: the width depends on the model (``onnx``): hex of any width in
            ``min_bits..max_bits`` (a multiple of 8) parses.
    """

    name: str
    bits: int
    match_distance: int
    min_quality: int
    variable_width: bool = False
    min_bits: int = 64
    max_bits: int = 256

    @property
    def hex_digits(self) -> int:
        """Hex digits of one hash at :attr:`bits`."""
        return self.bits // 4

    def check_hex(self, text: str) -> str | None:
        """The reason ``text`` is not a hash of this algorithm, or None."""
        if not _HEX.fullmatch(text):
            return "not a hexadecimal hash"
        if self.variable_width:
            bits = len(text) * 4
            if bits % 8 or not self.min_bits <= bits <= self.max_bits:
                return (f"a {self.name} hash has {self.min_bits // 4} to {self.max_bits // 4} hex digits "
                        f"(whole bytes), this one has {len(text)}")
            return None
        if len(text) != self.hex_digits:
            return f"a {self.name} hash has {self.hex_digits} hex digits, this one has {len(text)}"
        return None

    def parse_hex(self, text: str) -> bytes:
        """The hash bytes of a hex string (either case, surrounding white space ignored).

        Raises:
            ValueError: not hex, or not this algorithm's width.
        """
        text = text.strip()
        reason = self.check_hex(text)
        if reason:
            raise ValueError(reason)
        return bytes.fromhex(text)

    def format_hex(self, value: bytes) -> str:
        """Lowercase hex, most significant digit first (ThreatExchange / StopNCII convention)."""
        if not self.variable_width and len(value) * 8 != self.bits:
            raise ValueError(f"a {self.name} hash has {self.bits // 8} bytes, this one has {len(value)}")
        return value.hex()

    def distance(self, a: bytes, b: bytes) -> int:
        """Hamming distance between two hashes of this algorithm (same length)."""
        if len(a) != len(b):
            raise ValueError(f"hashes differ in length ({len(a)} and {len(b)} bytes)")
        return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()

    def is_match(self, distance: int) -> bool:
        """True when ``distance`` is within :attr:`match_distance`."""
        return distance <= self.match_distance

    def passes_quality(self, quality: int | None) -> bool:
        """True when a hash of ``quality`` may be matched (None: unknown, fails)."""
        return quality is not None and quality >= self.min_quality

    def scaled(self, pdq_distance: int) -> int:
        """A distance on PDQ's 256-bit scale, scaled to this algorithm's width."""
        return round(pdq_distance * self.bits / PDQ.bits)

    def with_bits(self, bits: int, *, match_distance: int | None = None) -> AlgorithmSpec:
        """This spec at another width; ``match_distance`` None scales PDQ's distance to ``bits``."""
        distance = scaled_match_distance(bits) if match_distance is None else int(match_distance)
        return replace(self, bits=int(bits), match_distance=distance)


def scaled_match_distance(bits: int) -> int:
    """PDQ's match distance scaled to a hash of ``bits`` bits (31 of 256 is 8 of 64)."""
    return round(PDQ.match_distance * bits / PDQ.bits)


PDQ = AlgorithmSpec("pdq", 256, 31, 50)
"""Meta's PDQ: ThreatExchange's ``PDQ_CONFIDENT_MATCH_THRESHOLD`` (31) and ``QUALITY_THRESHOLD`` (50)."""
DEFAULT_MIN_QUALITY = PDQ.min_quality
"""The gate for hashes of an algorithm with no spec here (entries imported under another name)."""
PHASH = AlgorithmSpec("phash", 64, scaled_match_distance(64), DEFAULT_MIN_QUALITY)
DHASH = AlgorithmSpec("dhash", 64, scaled_match_distance(64), DEFAULT_MIN_QUALITY)
AHASH = AlgorithmSpec("ahash", 64, scaled_match_distance(64), DEFAULT_MIN_QUALITY)
ONNX = AlgorithmSpec("onnx", 256, 25, DEFAULT_MIN_QUALITY, variable_width=True)
"""The learned hash at the shipped model's width and calibrated distance (``pocketscan-embed-v1.json``)."""

SPECS: dict[str, AlgorithmSpec] = {s.name: s for s in (PDQ, PHASH, DHASH, AHASH, ONNX)}


def find_spec(name: str) -> AlgorithmSpec | None:
    """The spec of a built-in algorithm, or None for an unknown name."""
    return SPECS.get(name)


def spec_for(name: str) -> AlgorithmSpec:
    """The spec of a built-in algorithm.

    Raises:
        KeyError: no algorithm has that name.
    """
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown hash algorithm {name!r}; choose one of {', '.join(SPECS)}") from None


def match_distance_for(algorithm: str, bits: int) -> int:
    """The match distance for ``bits``-bit hashes of ``algorithm``: its spec's when the width is the spec's,
    else PDQ's distance scaled to ``bits`` (an unknown algorithm, or a model width nobody calibrated)."""
    spec = SPECS.get(algorithm)
    if spec is not None and spec.bits == bits:
        return spec.match_distance
    return scaled_match_distance(bits)


def quality_gate(algorithm: str) -> int:
    """The quality gate of ``algorithm`` (:data:`DEFAULT_MIN_QUALITY` for a name with no spec)."""
    spec = SPECS.get(algorithm)
    return spec.min_quality if spec is not None else DEFAULT_MIN_QUALITY
