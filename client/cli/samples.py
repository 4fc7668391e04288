"""``pocketscan samples``: where the bundled sample photos are, so examples run from any folder."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from client.cli.registry import CommandRegistry

__all__ = ["register"]


def register(registry: CommandRegistry) -> None:
    p = registry.command(
        "samples", _samples,
        help="print the paths of the bundled sample photos (or copy them into a folder)",
        epilog=("examples:\n"
                "  pocketscan samples                  # one absolute path per line\n"
                "  pocketscan samples rocket.jpg       # one sample's path (name or stem)\n"
                "  pocketscan samples --dir            # the folder that holds them\n"
                "  pocketscan samples --copy photos/   # copy them into photos/, print the copies"),
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="sample file names or stems (default: all)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--dir", action="store_true", help="print the folder instead of the files")
    what.add_argument("--copy", metavar="DIR", type=Path,
                      help="copy the samples into DIR (created if missing)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of one path per line")


def _samples(args: argparse.Namespace) -> int:
    from client.samples import SamplesMissing, sample_dir, sample_path, sample_paths

    try:
        if args.dir:
            paths = [sample_dir()]
        else:
            paths = [sample_path(n) for n in args.names] if args.names else sample_paths()
        if args.copy is not None:
            args.copy.mkdir(parents=True, exist_ok=True)
            paths = [Path(shutil.copy2(p, args.copy / p.name)).resolve() for p in paths]
    except (SamplesMissing, OSError) as exc:
        print(f"pocketscan samples: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([str(p) for p in paths]))
    else:
        for p in paths:
            print(p)
    return 0
