"""Folders of images -> hashes, once per image, on every core.

* :func:`list_images` walks a folder (``scanner.discovery`` rules; sorted, so runs are reproducible); an
  image's *family* is its first sub-folder under the root (``"(root)"`` for files directly in it), which the
  reports break results down by.
* :func:`hash_corpus` decodes each image once and hashes it with every requested algorithm (PDQ also with its
  8 dihedral variants), in a process pool. Unreadable files are counted and listed, never fatal.
* :func:`algo_info` gives an algorithm's width, match threshold and quality gate: its hasher's
  ``algorithm`` spec (``scanner.hashers.spec``; PDQ: 31 and 50; the learned hash: its model's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AlgoInfo",
    "HashSet",
    "ImageEntry",
    "algo_info",
    "cheap_dihedral",
    "get_cached_hasher",
    "hash_corpus",
    "list_bank",
    "list_images",
    "parse_algos",
]

@dataclass(frozen=True)
class ImageEntry:
    path: str
    family: str

    @property
    def name(self) -> str:
        return Path(self.path).name


def list_images(folder: str | os.PathLike[str]) -> list[ImageEntry]:
    """Every image file under ``folder`` (``scanner.discovery.image_files``: recursive, sorted, no hidden
    entries), with its family (first sub-folder)."""
    from scanner.discovery import image_paths

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    out = []
    for p in image_paths(root):
        rel = p.relative_to(root)
        family = rel.parts[0] if len(rel.parts) > 1 else "(root)"
        out.append(ImageEntry(str(p), family))
    return out


def list_bank(folder: str | os.PathLike[str], limit: int | None = None) -> list[ImageEntry]:
    """:func:`list_images` of a bank folder, the first ``limit`` only when given; ValueError when empty."""
    entries = list_images(folder)
    if limit:
        entries = entries[:limit]
    if not entries:
        raise ValueError(f"{folder}: no images found")
    return entries


def parse_algos(values: Sequence[str] | None, default: str = "pdq") -> list[str]:
    """``["pdq,onnx", "phash"]`` -> ``["pdq", "onnx", "phash"]``, checked against the hasher registry."""
    from scanner.hashers.registry import hasher_names

    names: list[str] = []
    for v in values or [default]:
        for part in v.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    known = hasher_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown --algo {', '.join(unknown)}; available: {', '.join(known)}")
    return names or [default]


@dataclass(frozen=True)
class AlgoInfo:
    name: str
    bits: int
    threshold: int
    min_quality: int
    supports_dihedral: bool


_HASHERS: dict[str, Any] = {}

CHEAP_DIHEDRAL: frozenset[str] = frozenset({"pdq"})
"""Algorithms whose 8 dihedral variants come almost free (PDQ derives them from one DCT). The others would
rotate and re-hash the full image 8 times, so research hashes them without variants."""


def cheap_dihedral(name: str) -> bool:
    return name in CHEAP_DIHEDRAL


def get_cached_hasher(name: str) -> Any:
    """One hasher per algorithm per process (the ONNX session is created once)."""
    if name not in _HASHERS:
        from scanner.hashers.registry import get_hasher

        _HASHERS[name] = get_hasher(name)
    return _HASHERS[name]


def algo_info(name: str) -> AlgoInfo:
    spec = get_cached_hasher(name).algorithm
    return AlgoInfo(name=name, bits=spec.bits, threshold=spec.match_distance, min_quality=spec.min_quality,
                    supports_dihedral=True)


@dataclass
class HashSet:
    """Hashes of images for one algorithm; row i belongs to ``entries[i]`` (unreadable files excluded)."""

    algo: str
    entries: list[ImageEntry]
    hashes: np.ndarray  # (N, nbytes) uint8
    quality: np.ndarray  # (N,) int
    dihedral: np.ndarray | None  # (N, 8, nbytes) uint8 or None
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)


def _hash_one(
    job: tuple[str, tuple[str, ...], bool, str],
) -> tuple[str, dict[str, tuple[bytes, int, tuple[bytes, ...] | None]] | str, tuple[int, int]]:
    path, algos, dihedral, mode = job
    from scanner.errors import ImageError
    from scanner.image import load_rgb

    try:
        rgb = load_rgb(path, mode=mode)  # type: ignore[arg-type]
    except (ImageError, OSError, ValueError) as exc:
        return path, f"{exc}", (0, 0)
    out: dict[str, tuple[bytes, int, tuple[bytes, ...] | None]] = {}
    for algo in algos:
        try:
            r = get_cached_hasher(algo).hash_rgb(rgb, dihedral=dihedral and cheap_dihedral(algo))
        except (ImageError, ValueError) as exc:
            return path, f"{algo}: {exc}", (0, 0)
        out[algo] = (r.hash, int(r.quality), r.dihedral)
    return path, out, (int(rgb.shape[1]), int(rgb.shape[0]))


def hash_corpus(
    entries: Sequence[ImageEntry],
    algos: Sequence[str],
    *,
    dihedral: bool = True,
    mode: str = "fast",
    workers: int | None = None,
    quiet: bool = True,
    description: str = "hashing",
) -> tuple[dict[str, HashSet], list[tuple[str, str]]]:
    """Hash every entry with every algorithm; returns ({algo: HashSet}, [(path, error), ...])."""
    from research.parallel import imap, progress

    jobs = [(e.path, tuple(algos), dihedral, mode) for e in entries]
    results = list(
        progress(
            imap(_hash_one, jobs, workers=workers), total=len(jobs), description=description, quiet=quiet
        )
    )
    errors: list[tuple[str, str]] = []
    ok_entries: list[ImageEntry] = []
    rows: list[dict[str, tuple[bytes, int, tuple[bytes, ...] | None]]] = []
    sizes: list[tuple[int, int]] = []
    for entry, (path, res, size) in zip(entries, results, strict=True):
        if isinstance(res, str):
            errors.append((path, res))
        else:
            ok_entries.append(entry)
            rows.append(res)
            sizes.append(size)
    sets: dict[str, HashSet] = {}
    for algo in algos:
        nbytes = algo_info(algo).bits // 8
        hs = np.array([np.frombuffer(r[algo][0], np.uint8) for r in rows], dtype=np.uint8).reshape(-1, nbytes)
        qs = np.array([r[algo][1] for r in rows], dtype=np.int64)
        dih = None
        if dihedral and rows and all(r[algo][2] is not None for r in rows):
            dih = np.array(
                [[np.frombuffer(v, np.uint8) for v in r[algo][2] or ()] for r in rows], dtype=np.uint8
            )
        sets[algo] = HashSet(algo, ok_entries, hs, qs, dih, sizes)
    return sets, errors
