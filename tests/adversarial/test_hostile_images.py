"""Bounded decoding: any image file decodes within 512 MB peak RSS or is refused with a clear error.

Each decode runs in a fresh Python process whose peak resident set (``VmHWM``) is read back, through
the same doors the client uses: the scanner (``scanner.image``, both modes) and the TUI's thumbnail
loader. The hostile files are generated here: a 164 KB PNG of 169 megapixels and a small RGBA PNG of
100 megapixels (issue 11 measured 1.0 GB and 817 MB for them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adversarial.hostile import REPO, flat_png

LIMIT_MB = 512

_CHILD = r"""
import inspect, json, sys
from pathlib import Path

door, path = sys.argv[1], Path(sys.argv[2])
result = {"ok": False, "error": ""}
try:
    if door == "thumbnail":
        from client.tui.widgets.thumbnail import load_thumbnail_pixels
        first = next(iter(inspect.signature(load_thumbnail_pixels).parameters))
        arg = path if first == "path" else path.read_bytes()
        load_thumbnail_pixels(arg, width=24, max_rows=8)
    else:
        from scanner.image import load_rgb_bytes
        load_rgb_bytes(path.read_bytes(), name=path.name, mode=door)
    result["ok"] = True
except Exception as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
        result["hwm_mb"] = int(line.split()[1]) / 1024
print(json.dumps(result))
"""


def decode_in_child(door: str, path: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, door, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile-images")
    files = {
        "png-169mp": flat_png(13_000, 13_000),
        "rgba-100mp": flat_png(10_000, 10_000, rgba=True),
        "rgb-24mp": flat_png(6_000, 4_000),  # large but legitimate: must decode
        "rgb-48mp": flat_png(8_000, 6_000),  # a 48 MP phone photo's size: must decode too
    }
    out = {}
    for name, data in files.items():
        out[name] = root / f"{name}.png"
        out[name].write_bytes(data)
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
@pytest.mark.parametrize("door", ["thumbnail", "fast", "exact"])
@pytest.mark.parametrize("case", ["png-169mp", "rgba-100mp", "rgb-24mp", "rgb-48mp"])
def test_any_file_decodes_within_512_mb_or_is_refused(case: str, door: str,
                                                     hostile_files: dict[str, Path]) -> None:
    path = hostile_files[case]
    start = time.perf_counter()
    result = decode_in_child(door, path)
    took = time.perf_counter() - start
    print(f"{case} via {door}: {result} in {took:.1f} s ({path.stat().st_size} bytes)")
    peak = float(str(result["hwm_mb"]))
    assert peak < LIMIT_MB, f"{case} via {door} peaked at {peak:.0f} MB"
    if case in ("rgb-24mp", "rgb-48mp"):
        assert result["ok"], result["error"]
    elif not result["ok"]:
        error = str(result["error"])
        assert error.startswith("ImageError") and ("limit" in error or "bomb" in error), error
