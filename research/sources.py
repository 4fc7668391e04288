"""Where the benign images of a streaming run come from, one image at a time, by index.

A :class:`Plan` concatenates up to three sources into one index space ``0 .. total-1``:

1. **files**: a folder tree (:func:`research.corpus.list_images`; family = first sub-folder) or a file list
   (one path per line; family = the file's parent folder name);
2. **generated**: image ``i`` of the confuser families (:func:`research.generate.generate_image` with
   ``generate_seed``; family ``i mod 7`` in :data:`~research.generate.FAMILIES` order, as
   ``pocketscan research generate`` writes them), drawn at ``generate_scale``;
3. **edits**: image ``i`` is a random edit of corpus image ``i mod M``: a crop keeping 50-100 % of each side
   at a random place, a resize to a long side of 128-320 px, then one named transform of
   :mod:`research.transforms` (never ``noop``), all drawn from ``default_rng([edit_seed, i])``.

Every image depends only on its index and the plan, so any partition ``[start, stop)`` can be produced on
any worker, in any order, and a resumed run sees the same pixels. :func:`load_item` returns the pixels as
an ``HxWx3`` uint8 array, or an error string for an unreadable file (counted, never fatal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "EDIT_FAMILY",
    "EDIT_TRANSFORMS",
    "Plan",
    "item_image",
    "load_item",
    "make_plan",
    "png_bytes",
    "read_file_list",
    "source_of",
]

EDIT_FAMILY = "corpus-edit"
EDIT_TRANSFORMS: tuple[str, ...] = (
    "jpeg95",
    "jpeg70",
    "jpeg50",
    "crop0.05",
    "pad0.2",
    "rotate4",
    "rotate90",
    "mirror",
    "blur2",
    "noise0.05",
    "gamma2",
    "vignette",
    "watermark",
    "caption",
    "recolour",
)
"""Transforms an edit draws from (thorn's set and more; ``screenshot`` and ``resize*`` are left out because
the edit already resizes)."""
EDIT_BASE_SIDE = 640
"""Corpus images are decoded once per worker and kept at this long side (bounded memory per worker)."""


@dataclass(frozen=True)
class Plan:
    """The benign side of a streaming run. ``files`` are only listed here; tasks get their own slice."""

    files: tuple[str, ...] = ()
    file_families: tuple[str, ...] = ()
    generate: int = 0
    generate_seed: int = 1_000_003
    generate_scale: float = 1.0
    generate_families: tuple[str, ...] = ()
    edits: int = 0
    edit_seed: int = 0
    edit_corpus: tuple[str, ...] = ()
    decode: str = "fast"
    families: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return len(self.files) + self.generate + self.edits

    def describe(self) -> dict[str, object]:
        """The plan without the file list (for results.json and the checkpoint's identity)."""
        return {
            "files": len(self.files),
            "generated": self.generate,
            "generate_seed": self.generate_seed,
            "generate_scale": self.generate_scale,
            "generate_families": list(self.generate_families),
            "edits": self.edits,
            "edit_seed": self.edit_seed,
            "edit_corpus_images": len(self.edit_corpus),
            "decode": self.decode,
        }

    def family_of(self, index: int) -> str:
        if index < len(self.files):
            return self.file_families[index]
        index -= len(self.files)
        if index < self.generate:
            return self.generate_families[index % len(self.generate_families)]
        return EDIT_FAMILY

    def label_of(self, index: int) -> str:
        """A human label: the path, ``generated:<family>#<i>`` or ``edit:<corpus name>#<i>``."""
        if index < len(self.files):
            return self.files[index]
        j = index - len(self.files)
        if j < self.generate:
            fam = self.generate_families[j % len(self.generate_families)]
            return f"generated:{fam}#{j} (seed {self.generate_seed}, scale {self.generate_scale})"
        j -= self.generate
        return f"edit:{Path(self.edit_corpus[j % len(self.edit_corpus)]).name}#{j} (seed {self.edit_seed})"


def make_plan(
    *,
    folder: str | None = None,
    file_list: str | None = None,
    generate: int = 0,
    generate_seed: int = 1_000_003,
    generate_scale: float = 1.0,
    generate_families: tuple[str, ...] | None = None,
    edits: int = 0,
    edit_corpus: str | None = None,
    edit_seed: int = 0,
    decode: str = "fast",
) -> Plan:
    """Check and assemble the sources (see the module docstring)."""
    from research.corpus import list_images
    from research.generate import FAMILIES

    files: list[str] = []
    fams: list[str] = []
    if folder:
        for e in list_images(folder):
            files.append(e.path)
            fams.append(e.family)
    if file_list:
        for path in read_file_list(file_list):
            files.append(path)
            fams.append(Path(path).parent.name or "(root)")
    if generate < 0 or edits < 0:
        raise ValueError("--generate and --edits must not be negative")
    gen_fams = tuple(generate_families or FAMILIES)
    unknown = [f for f in gen_fams if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    if not 0.05 <= generate_scale <= 4.0:
        raise ValueError(f"--generate-scale must be within [0.05, 4], got {generate_scale}")
    corpus: tuple[str, ...] = ()
    if edits:
        if not edit_corpus:
            raise ValueError("--edits needs --edit-corpus DIR (the images to edit)")
        corpus = tuple(e.path for e in list_images(edit_corpus))
        if not corpus:
            raise ValueError(f"{edit_corpus}: no images found")
    plan = Plan(
        files=tuple(files),
        file_families=tuple(fams),
        generate=generate,
        generate_seed=generate_seed,
        generate_scale=generate_scale,
        generate_families=gen_fams,
        edits=edits,
        edit_seed=edit_seed,
        edit_corpus=corpus,
        decode=decode,
    )
    if plan.total == 0:
        raise ValueError("no benign images: give --benign DIR, --file-list FILE, --generate N or --edits N")
    ordered = sorted(set(fams)) + [f for f in gen_fams if generate] + ([EDIT_FAMILY] if edits else [])
    return Plan(**{**plan.__dict__, "families": tuple(dict.fromkeys(ordered))})


def read_file_list(path: str) -> list[str]:
    """Paths from a file list: one per line, blank lines and ``#`` comments skipped, relative to the list."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file list")
    out = []
    base = p.resolve().parent
    with p.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            q = Path(line)
            out.append(str(q if q.is_absolute() else base / q))
    if not out:
        raise ValueError(f"{p}: the file list names no image")
    return out


@lru_cache(maxsize=64)
def _edit_base(path: str) -> np.ndarray:
    """A corpus image decoded once per process, long side at most :data:`EDIT_BASE_SIDE`."""
    from PIL import Image

    with Image.open(path) as im:
        im.draft("RGB", (EDIT_BASE_SIDE, EDIT_BASE_SIDE))  # JPEG: decode at a reduced scale directly
        rgb = im.convert("RGB")
    rgb.thumbnail((EDIT_BASE_SIDE, EDIT_BASE_SIDE))
    return np.asarray(rgb)


def _edit(plan: Plan, j: int) -> np.ndarray:
    from PIL import Image

    from research.transforms import TRANSFORMS

    base = _edit_base(plan.edit_corpus[j % len(plan.edit_corpus)])
    rng = np.random.default_rng([plan.edit_seed, j])
    h, w = base.shape[:2]
    ch, cw = max(8, int(h * rng.uniform(0.5, 1.0))), max(8, int(w * rng.uniform(0.5, 1.0)))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    im = Image.fromarray(base[y0 : y0 + ch, x0 : x0 + cw])
    side = int(rng.integers(128, 321))
    scale = side / max(ch, cw)
    im = im.resize((max(8, round(cw * scale)), max(8, round(ch * scale))), Image.Resampling.BILINEAR)
    name = EDIT_TRANSFORMS[int(rng.integers(0, len(EDIT_TRANSFORMS)))]
    out = TRANSFORMS[name](im, rng)
    return np.asarray(out.convert("RGB"))


def item_image(plan: Plan, index: int) -> np.ndarray | str:
    """Pixels of benign image ``index`` of a plan without files, or of a generated/edited index."""
    from research.generate import generate_image

    j = index - len(plan.files)
    if j < 0:
        raise ValueError("file items are loaded by load_item with their path")
    if j < plan.generate:
        fam = plan.generate_families[j % len(plan.generate_families)]
        return np.asarray(generate_image(j, fam, plan.generate_seed, plan.generate_scale))
    j -= plan.generate
    if j < plan.edits:
        return _edit(plan, j)
    raise IndexError(f"index {index} is outside the plan ({plan.total} images)")


def load_item(plan: Plan, index: int, path: str | None) -> np.ndarray | str:
    """Pixels of image ``index`` (``path`` for file items), or the reason it cannot be read."""
    if path is None:
        return item_image(plan, index)
    from scanner.errors import ImageError
    from scanner.image import load_rgb

    try:
        return load_rgb(path, mode=plan.decode)  # type: ignore[arg-type]
    except (ImageError, OSError, ValueError) as exc:
        return f"{exc}"


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of pixels (for report galleries of generated images, which have no file)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def source_of(plan: Plan, index: int) -> str:
    """``files``, ``generated`` or ``edits``."""
    if index < len(plan.files):
        return "files"
    return "generated" if index - len(plan.files) < plan.generate else "edits"
