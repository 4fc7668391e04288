"""Parse bank imports: text files of hex hashes, CSV files, and folders of images.

* Text (ThreatExchange / StopNCII style): one hash per line, optionally followed by a comma or whitespace
  and a
  quality (``hex[,quality]``); blank lines and lines starting with ``#`` are skipped.
* CSV (a ``.csv`` file): a header row with a ``hash`` column (also accepted: ``signal``, ``pdq``), optional
  ``quality``, ``label`` (or ``category``), ``algorithm`` and ``expires`` (Unix seconds) columns.
* A folder: every image file in it (found by :func:`scanner.discovery.image_files`: recursive, no hidden
  entries, the same files ``pocketscan hash`` sees) is hashed with :func:`scanner.hashing.hash_file`.

:func:`collect_entries` reads every source and gathers every problem with its line number; the caller stores
nothing unless the list of problems is empty (:class:`~scanner.errors.BankImportError`).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from scanner.bank import NewEntry
from scanner.discovery import image_paths, is_image_name
from scanner.errors import BankImportError, ImageError
from scanner.hashers.spec import find_spec

__all__ = ["MAX_IMPORT_BYTES", "check_hash", "collect_entries", "parse_csv", "parse_text"]

#: Largest text/CSV import file accepted.
MAX_IMPORT_BYTES = 512 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-fA-F]+$")

Problem = tuple[str, int, str]


def check_hash(text: str, algorithm: str) -> str | None:
    """The reason ``text`` is not a valid hash of ``algorithm``, or None.

    A built-in algorithm's spec checks the width (``scanner.hashers.spec``; the learned hash accepts any
    model width); a hash of an algorithm with no spec need only be hexadecimal.
    """
    spec = find_spec(algorithm)
    if spec is not None:
        return spec.check_hex(text)
    return None if _HEX.match(text) else "not a hexadecimal hash"


def _quality(text: str) -> int | None:
    try:
        q = int(text)
    except ValueError:
        return None
    return q if 0 <= q <= 100 else None


def parse_text(
    data: str, *, source: str, algorithm: str, label: str, default_quality: int, expires: int | None
) -> tuple[list[NewEntry], list[Problem]]:
    """Parse a text import; returns entries and problems ``(source, line, reason)``."""
    entries: list[NewEntry] = []
    problems: list[Problem] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        if len(parts) > 2:
            problems.append((source, number, "expected a hash and an optional quality"))
            continue
        reason = check_hash(parts[0], algorithm)
        if reason:
            problems.append((source, number, reason))
            continue
        quality = default_quality
        if len(parts) == 2:
            q = _quality(parts[1])
            if q is None:
                problems.append((source, number, f"quality {parts[1]!r} is not an integer in 0..100"))
                continue
            quality = q
        entries.append(NewEntry(algorithm, parts[0].lower(), quality, label, f"{source}:{number}", expires))
    return entries, problems


def parse_csv(
    data: str, *, source: str, algorithm: str, label: str, default_quality: int, expires: int | None
) -> tuple[list[NewEntry], list[Problem]]:
    """Parse a CSV import (header row required); returns entries and problems."""
    entries: list[NewEntry] = []
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(data))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return entries, [(source, 0, "empty CSV file")]
    except csv.Error as exc:
        return entries, [(source, 1, f"unreadable CSV header ({exc})")]
    col = {name: i for i, name in enumerate(header)}
    hash_col = next((col[n] for n in ("hash", "signal", "pdq") if n in col), None)
    if hash_col is None:
        return entries, [(source, 1, "the CSV header has no 'hash' column")]
    label_col = col.get("label", col.get("category"))
    try:
        for row in reader:
            number = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                problems.append((source, number, f"{len(row)} fields, the header has {len(header)}"))
                continue
            algo = row[col["algorithm"]].strip().lower() if "algorithm" in col else algorithm
            value = row[hash_col].strip()
            reason = check_hash(value, algo)
            if reason:
                problems.append((source, number, reason))
                continue
            quality = default_quality
            if "quality" in col and row[col["quality"]].strip():
                q = _quality(row[col["quality"]].strip())
                if q is None:
                    problems.append((source, number, f"quality {row[col['quality']]!r} is not in 0..100"))
                    continue
                quality = q
            row_expires = expires
            if "expires" in col and row[col["expires"]].strip():
                try:
                    row_expires = int(row[col["expires"]].strip())
                except ValueError:
                    problems.append((source, number, "expires must be Unix seconds"))
                    continue
            row_label = row[label_col].strip() if label_col is not None and row[label_col].strip() else label
            entries.append(
                NewEntry(algo, value.lower(), quality, row_label, f"{source}:{number}", row_expires)
            )
    except csv.Error as exc:
        problems.append((source, reader.line_num, f"malformed CSV ({exc})"))
    return entries, problems


def collect_entries(
    sources: Sequence[str | os.PathLike[str]],
    *,
    algorithm: str = "pdq",
    label: str = "",
    default_quality: int = 100,
    expires: int | None = None,
    on_image: Callable[[Path], None] | None = None,
) -> list[NewEntry]:
    """Read every source and return the entries to import.

    Raises:
        BankImportError: any malformed line, unreadable file or undecodable image (every problem listed).
    """
    entries: list[NewEntry] = []
    problems: list[Problem] = []
    for src in sources:
        path = Path(src)
        name = str(path)
        if path.is_dir():
            images = image_paths(path)
            if not images:
                problems.append((name, 0, "no image files in this folder"))
            for image in images:
                if on_image is not None:
                    on_image(image)
                entry, problem = _hash_image(image, algorithm, label, expires)
                if problem:
                    problems.append((str(image), 0, problem))
                elif entry:
                    entries.append(entry)
            continue
        if is_image_name(path) and path.is_file():
            entry, problem = _hash_image(path, algorithm, label, expires)
            if problem:
                problems.append((name, 0, problem))
            elif entry:
                entries.append(entry)
            continue
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                problems.append((name, 0, f"larger than {MAX_IMPORT_BYTES} bytes"))
                continue
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            problems.append((name, 0, "no such file or folder"))
            continue
        except UnicodeDecodeError:
            problems.append((name, 0, "not a UTF-8 text file"))
            continue
        except OSError as exc:
            problems.append((name, 0, f"cannot read ({exc.strerror})"))
            continue
        parse = parse_csv if path.suffix.lower() == ".csv" else parse_text
        got, bad = parse(
            text,
            source=name,
            algorithm=algorithm,
            label=label,
            default_quality=default_quality,
            expires=expires,
        )
        entries.extend(got)
        problems.extend(bad)
    if problems:
        raise BankImportError(problems)
    return entries


def _hash_image(path: Path, algorithm: str, label: str, expires: int | None) -> tuple[NewEntry | None, str]:
    from scanner.hashing import hash_file

    try:
        result = hash_file(path, algo=algorithm)
    except ImageError as exc:
        return None, exc.reason
    return NewEntry(algorithm, result.hash.hex(), result.quality, label, str(path), expires), ""
