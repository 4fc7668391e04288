"""Where the sample photos are: the repository's ``samples/`` or the copy installed with the package.

``pip install -e .`` (a checkout) uses ``samples/`` next to the packages; a regular install puts a copy
under ``<prefix>/share/pocketscan/samples`` (``[tool.setuptools.data-files]`` in pyproject.toml).
``$POCKETSCAN_SAMPLES`` overrides both.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from scanner.discovery import image_paths, is_image_name

__all__ = ["SamplesMissing", "sample_dir", "sample_path", "sample_paths"]

class SamplesMissing(LookupError):
    """No sample folder, or no sample of that name."""


def _candidates() -> list[Path]:
    env = os.environ.get("POCKETSCAN_SAMPLES")
    found = [Path(env).expanduser()] if env else []
    found.append(Path(__file__).resolve().parents[1] / "samples")
    for prefix in {sys.prefix, sysconfig.get_paths()["data"]}:
        found.append(Path(prefix) / "share" / "pocketscan" / "samples")
    return found


def sample_dir() -> Path:
    """The first folder of the candidates that holds sample images (absolute)."""
    for folder in _candidates():
        if folder.is_dir() and any(is_image_name(p) for p in folder.iterdir()):
            return folder.resolve()
    raise SamplesMissing("no sample photos found: set POCKETSCAN_SAMPLES to a folder of images")


def sample_paths() -> list[Path]:
    """Every sample image (``scanner.discovery`` rules), sorted, as absolute paths."""
    return image_paths(sample_dir())


def sample_path(name: str) -> Path:
    """One sample by file name (``rocket.jpg``) or stem (``rocket``)."""
    for p in sample_paths():
        if name in (p.name, p.stem):
            return p
    known = ", ".join(p.name for p in sample_paths())
    raise SamplesMissing(f"no sample named {name!r}; the samples are: {known}")
