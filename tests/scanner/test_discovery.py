"""One image discovery rule set (``scanner.discovery``): hash, bank import, research and the file picker."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.cli.main import main
from research.corpus import list_images
from scanner.bank import HashBank
from scanner.discovery import IMAGE_SUFFIXES, expand_image_paths, image_files, is_image_name
from scanner.image import ALLOWED_FORMATS


def _image(path: Path, seed: int, fmt: str | None = None) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8).repeat(4, axis=0).repeat(4, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A folder with nested, upper-case, hidden, symlinked, broken and non-image entries."""
    root = tmp_path / "photos"
    _image(root / "a.JPG", 1, "JPEG")
    _image(root / "sub" / "deeper" / "b.png", 2)
    _image(root / "sub" / "c.webp", 3)
    _image(root / "d.tiff", 4)
    (root / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")  # the decoder refuses HEIC: not listed
    (root / "notes.txt").write_text("not an image")
    _image(root / ".hidden.png", 5)
    _image(root / ".cache" / "e.png", 6)
    outside = tmp_path / "outside"
    _image(outside / "f.png", 7)
    os.symlink(outside / "f.png", root / "linked.png")  # a symlinked file is taken
    os.symlink(outside, root / "linked-dir")  # a symlinked folder is not descended
    os.symlink(tmp_path / "missing.png", root / "broken.png")  # a broken link is skipped
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.png")  # not a regular file: skipped (reading it would block)
    return root


EXPECTED = ["a.JPG", "d.tiff", "linked.png", "sub/c.webp", "sub/deeper/b.png"]


def _rel(root: Path, paths: list[str]) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


def test_walk_rules(tree: Path) -> None:
    assert _rel(tree, image_files(tree)) == EXPECTED
    assert image_files(tree) == sorted(image_files(tree))
    named = [str(tree / "notes.txt"), str(tree / ".hidden.png"), str(tree / "sub")]
    assert list(expand_image_paths(named)) == [
        str(tree / "notes.txt"), str(tree / ".hidden.png"), str(tree / "sub" / "c.webp"),
        str(tree / "sub" / "deeper" / "b.png"),
    ]
    assert is_image_name("X.JPEG") and is_image_name("a.b.tif") and not is_image_name("a.heic")


def test_suffixes_are_the_formats_the_decoder_opens() -> None:
    Image.init()
    for suffix in IMAGE_SUFFIXES:
        assert suffix == suffix.lower() and Image.EXTENSION.get(suffix) in ALLOWED_FORMATS, suffix
    assert {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert not {".heic", ".heif", ".avif"} & IMAGE_SUFFIXES


def test_hash_and_bank_import_see_the_same_files(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(tree)]) == 0
    hashed = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert _rel(tree, hashed) == EXPECTED
    bank = tmp_path / "bank.sqlite"
    assert main(["bank", "import", "--bank", str(bank), "--json", str(tree)]) == 0
    assert json.loads(capsys.readouterr().out)["read"] == len(EXPECTED)
    with HashBank(bank) as db:
        sources = sorted(e.source for e in db.entries())
    assert sources == sorted(hashed)
    assert [e.path for e in list_images(tree)] == hashed


def test_file_picker_uses_the_same_rules(tree: Path) -> None:
    from client.tui.screens.file_picker import ImageTree

    shown = {p.name for p in ImageTree.filter_paths(ImageTree.__new__(ImageTree), sorted(tree.iterdir()))}
    assert {"a.JPG", "d.tiff", "linked.png", "sub", "pipe.png", "broken.png", "linked-dir"} >= shown
    assert {"a.JPG", "d.tiff", "sub"} <= shown
    assert not shown & {".hidden.png", ".cache", "notes.txt", "phone.heic"}
