"""`pocketscan classify`: sensitive-content ratings of image files as JSON Lines.

Contract (kept exactly): ``pocketscan classify [--model NAME|PATH] PATH...``. Directories are walked
recursively for image files (sorted), as ``pocketscan hash`` does. One JSON object per file on stdout, in
input order: ``{"path", "label", "score", "model"}`` (label ``sensitive`` or ``ok``), or ``{"path", "error"}``
for a file that cannot be decoded or rated. Exit status 2 once all files are processed if any failed, else
0. Without the default model installed, one line on stderr says how to install it (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from scanner.commands.registry import CommandRegistry

__all__ = ["register", "run_classify"]

_EPILOG = """\
output (JSON Lines, one object per file, in input order):
  {"path": "a.jpg", "label": "ok", "score": 0.0, "model": "nudenet-320n"}
  {"path": "b.jpg", "label": "sensitive", "score": 0.83, "model": "nudenet-320n"}
  {"path": "c.txt", "error": "c.txt: not an image Pillow can read (unknown or corrupt format)"}
score: the highest detector score among the model's sensitive labels (0 when none was seen); the label is
"sensitive" when score >= the model's threshold (nudenet: 0.5, see docs/sensitive.md).
exit status: 0 when every file was rated, 2 when any failed (after processing all of them) or when the
model cannot be loaded.

models: "nudenet" (default; needs pip install 'pocketscan[sensitive]': NudeNet's 320n.onnx, whose weights
are AGPL-3.0), or the path of any .onnx detector or classifier with a JSON sidecar beside it
(model.json or model.onnx.json: name, kind, input_size, labels, sensitive_labels, threshold, ...).
"""


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan classify``."""
    parser = registry.command(
        "classify",
        _handle,
        help="sensitive-content ratings (NudeNet by default) of image files and directories, as JSON Lines",
        epilog=_EPILOG,
    )
    parser.add_argument("--model", default="nudenet", metavar="NAME|PATH",
                        help="classifier: nudenet (default) or an .onnx model with its JSON sidecar")
    parser.add_argument("--threshold", type=float, default=None, metavar="T",
                        help="override the model's threshold, 0 < T <= 1 (default: the model's own)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or directories (recursive)")


def run_classify(paths: Sequence[str], *, model: str = "nudenet", threshold: float | None = None,
                 out: TextIO | None = None, progress: bool | None = None) -> int:
    """Rate every file, print one JSON line each, return 2 if any failed (or the model is unusable)."""
    from scanner.classifiers import ClassifierError, get_classifier
    from scanner.classifying import classify_file
    from scanner.commands.hashing import _progress_bar
    from scanner.discovery import expand_image_paths
    from scanner.errors import ImageError

    stream = out if out is not None else sys.stdout
    options = {} if threshold is None else {"threshold": threshold}
    try:
        classifier = get_classifier(model, **options)
    except ClassifierError as exc:
        print(f"pocketscan classify: {exc}", file=sys.stderr)
        return 2
    files = list(expand_image_paths(paths))
    if progress is None:
        progress = len(files) > 1 and sys.stderr.isatty()
    failed = False
    with _progress_bar(len(files), enabled=progress, label="classifying") as advance:
        for path in files:
            record: dict[str, object]
            try:
                result = classify_file(path, classifier)
            except (ImageError, ClassifierError) as exc:
                failed = True
                record = {"path": path, "error": str(exc)}
            else:
                record = {"path": path, **result.as_dict()}
            print(json.dumps(record), file=stream, flush=True)
            advance()
    return 2 if failed else 0


def _handle(args: argparse.Namespace) -> int:
    return run_classify(args.paths, model=args.model, threshold=args.threshold)
