"""`pocketscan hash`: perceptual hashes of image files as JSON Lines.

Contract (kept exactly): ``pocketscan hash [--algo NAME] [--mode fast|exact] [--dihedral] PATH...``.
Directories are walked recursively for image files (sorted). One JSON object per file on stdout, in
input order: ``{"path", "algo", "hash", "quality"}`` (+ ``"dihedral"``: 8 hex strings with
``--dihedral``), or ``{"path", "error"}`` for a file that cannot be hashed. Exit status 2 once all
files are processed if any failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from scanner.commands.registry import CommandRegistry

__all__ = ["iter_image_paths", "register", "run_hash"]

_EPILOG = """\
output (JSON Lines, one object per file, in input order):
  {"path": "a.jpg", "algo": "pdq", "hash": "<hex>", "quality": 100}
  {"path": "b.jpg", "algo": "pdq", "hash": "<hex>", "quality": 87, "dihedral": ["<hex>", ... 8]}
  {"path": "c.txt", "error": "c.txt: not an image Pillow can read (unknown or corrupt format)"}
dihedral order: original, rot90, rot180, rot270, flipX, flipY, flipPlus1, flipMinus1
exit status: 0 when every file was hashed, 2 when any failed (after processing all of them)

modes: fast (default) decodes large JPEGs at reduced scale (>= 720 px on the shorter side), within a
few bits of the full-resolution hash; exact decodes at full resolution and equals Meta's reference.
"""


class _HasherNames:
    """``--algo`` choices looked up on first use: building the parser imports no hasher (and no numpy)."""

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    @staticmethod
    def _names() -> tuple[str, ...]:
        from scanner.hashers.registry import hasher_names

        return tuple(hasher_names())


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan hash``."""
    parser = registry.command(
        "hash",
        _handle,
        help="perceptual hashes (PDQ by default) of image files and directories, as JSON Lines",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--algo", choices=_HasherNames(), metavar="NAME", default="pdq",
        help="hash algorithm: %(choices)s (default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=("fast", "exact"),
        default="fast",
        help="fast: reduced-scale JPEG decode (default); exact: full resolution, equal to the reference",
    )
    parser.add_argument(
        "--dihedral", action="store_true", help="also output the 8 rotated/mirrored variants of each hash"
    )
    parser.add_argument("--model", metavar="PATH", help="--algo onnx: an ONNX model with its JSON sidecar "
                        "(default: the shipped pocketscan-embed model)")
    parser.add_argument("--seed", metavar="PATH", help="--algo onnx: hyperplane seed file (.npy, or the "
                        "NeuralHash layout: 128-byte header + float32 rows)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or directories (recursive)")


def iter_image_paths(paths: Sequence[str]) -> Iterator[str]:
    """Deprecated: :func:`scanner.discovery.expand_image_paths` (the one image discovery)."""
    from scanner.discovery import expand_image_paths

    return expand_image_paths(paths)


def run_hash(
    paths: Sequence[str], *, algo: str, mode: str, dihedral: bool, out: TextIO | None = None,
    options: dict[str, object] | None = None, progress: bool | None = None,
) -> int:
    """Hash every file, print one JSON line each, return 2 if any failed else 0.

    ``options`` go to the hasher (``get_hasher(algo, **options)``, e.g. ``model``/``seed`` for onnx).
    A progress bar goes to stderr when it is a terminal (``progress=None``) and there are several files.
    """
    from scanner.discovery import expand_image_paths
    from scanner.errors import ImageError, ScannerError
    from scanner.hashers.registry import get_hasher
    from scanner.hashing import hash_file
    from scanner.image import load_rgb

    stream = out if out is not None else sys.stdout
    hasher = None
    if options:
        try:
            hasher = get_hasher(algo, **options)
        except ScannerError as exc:
            print(f"pocketscan hash: {exc}", file=sys.stderr)
            return 2
    files = list(expand_image_paths(paths))
    if progress is None:
        progress = len(files) > 1 and sys.stderr.isatty()
    failed = False
    from scanner.progress import progress_bar

    with progress_bar("hashing", len(files), quiet=not progress) as advance:
        for path in files:
            record: dict[str, object]
            try:
                if hasher is None:
                    result = hash_file(path, algo=algo, mode=mode, dihedral=dihedral)
                else:
                    rgb = load_rgb(path, mode="exact" if mode == "exact" else "fast")
                    result = hasher.hash_rgb(rgb, dihedral=dihedral)
            except ImageError as exc:
                failed = True
                record = {"path": path, "error": str(exc)}
            else:
                record = {"path": path, "algo": result.algo, "hash": result.hex, "quality": result.quality}
                if result.dihedral is not None:
                    record["dihedral"] = [h.hex() for h in result.dihedral]
            print(json.dumps(record), file=stream, flush=True)
            advance()
    return 2 if failed else 0


@contextmanager
def _progress_bar(total: int, *, enabled: bool, label: str = "hashing") -> Iterator[Callable[[], None]]:
    """A bar labelled ``label`` (also for ``scanner.commands.classify``), via :mod:`scanner.progress`."""
    from scanner.progress import progress_bar

    with progress_bar(label, total, quiet=not enabled) as advance:
        yield advance


def _handle(args: argparse.Namespace) -> int:
    options = {k: v for k, v in (("model", args.model), ("seed", args.seed)) if v is not None}
    if options and args.algo != "onnx":
        print("pocketscan hash: --model/--seed apply to --algo onnx only", file=sys.stderr)
        return 2
    return run_hash(args.paths, algo=args.algo, mode=args.mode, dihedral=args.dihedral, options=options)
