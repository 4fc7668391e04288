"""Finding image files: the one set of rules used by every command that takes folders of images.

Used by ``pocketscan hash``, ``scan``, ``classify`` and ``bank import``, the research corpus loader and
benchmarks, the learned-hash tools (training, evaluation) and the TUI's file picker.

Rules (docs/decisions.md, "Image discovery"):

* **Suffixes.** A file is an image when its suffix, in any case, is in :data:`IMAGE_SUFFIXES`: the suffixes
  of exactly the formats the guarded decoder opens (``scanner.image.ALLOWED_FORMATS``: JPEG/MPO, PNG, GIF,
  WebP, BMP, TIFF, the PPM family, TGA, ICO). HEIC/HEIF and AVIF are not listed: the decoder refuses them, so
  a folder walk skips them rather than failing on them.
* **Named files.** A file named on the command line is always taken, whatever its suffix (the decoder then
  decides); only folders are filtered.
* **Recursion.** Folders are walked recursively; the files found are sorted by their path string, so every
  run lists them in the same order.
* **Hidden entries.** Files and folders whose name starts with ``.`` are skipped inside a walk (``.git``,
  ``.DS_Store``, ``._photo.jpg`` resource forks); a hidden path named explicitly is used.
* **Symlinks.** A symlink to a file is taken like the file; symlinked folders are not descended (no cycles,
  no walking out of the tree). Broken links and anything that is not a regular file (FIFOs, sockets,
  devices) are skipped: reading a FIFO would block.

This module imports nothing heavy (no numpy, no Pillow): the CLI and the TUI load it cheaply.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "expand_image_paths", "image_files", "image_paths", "is_hidden", "is_image_name"]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".apng", ".gif", ".webp", ".bmp", ".tif", ".tiff",
     ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico"}
)
"""Lowercase suffixes of the formats ``scanner.image`` decodes (checked against Pillow by a test)."""


def is_image_name(path: str | os.PathLike[str]) -> bool:
    """True when the file name has an image suffix (any case)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_SUFFIXES


def is_hidden(path: str | os.PathLike[str]) -> bool:
    """True for a dot-file or dot-folder name."""
    return os.path.basename(os.fspath(path)).startswith(".")


def _regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)  # follows a symlink; a broken one raises
    except OSError:
        return False


def image_files(folder: str | os.PathLike[str]) -> list[str]:
    """The image files under ``folder`` by the module's rules: recursive, sorted, no hidden entries, symlinked
    files taken, symlinked folders not descended, only regular files."""
    found: list[str] = []
    for root, dirs, files in os.walk(os.fspath(folder)):  # followlinks=False: symlinked folders stay shut
        dirs[:] = [d for d in dirs if not is_hidden(d)]
        for name in files:
            if is_hidden(name) or not is_image_name(name):
                continue
            path = os.path.join(root, name)
            if _regular_file(path):
                found.append(path)
    return sorted(found)


def expand_image_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Paths in the given order, each folder replaced by :func:`image_files` of it; named files as given."""
    for path in paths:
        text = os.fspath(path)
        if os.path.isdir(text):
            yield from image_files(text)
        else:
            yield text


def image_paths(folder: str | os.PathLike[str]) -> list[Path]:
    """:func:`image_files` as :class:`~pathlib.Path` objects."""
    return [Path(p) for p in image_files(folder)]
