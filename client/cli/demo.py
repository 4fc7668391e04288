"""``pocketscan demo``: the whole system on this machine, in one command, with no network."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from client.cli.registry import CommandRegistry

__all__ = ["register"]


def register(registry: CommandRegistry) -> None:
    p = registry.command(
        "demo", _demo,
        help="one-command demo: embedded relay, demo bank and snapshot, a bot contact, the TUI",
        description=(
            "Starts a relay on a free loopback port, a bank authority with a demo bank (3 of the 8\n"
            "sample photos) and a signed snapshot published to the relay, and a bot contact that\n"
            "answers and sends photos back; then opens the messenger already connected. Try\n"
            "`/image coffee.jpg` (not banked) and `/image rocket.jpg` (banked). No network needed."
        ),
    )
    p.add_argument("--dir", type=Path, default=None,
                   help="keep the demo's files (relay database, profiles, snapshot) in this folder")
    p.add_argument("--policy", choices=("off", "warn", "block", "report"), default="block",
                   help="your scanning policy at start (default block; change it with /policy)")
    p.add_argument("--check", action="store_true",
                   help="set everything up, print a JSON summary and exit without opening the TUI")


def _demo(args: argparse.Namespace) -> int:
    import json

    from client.demo.runtime import DemoRuntime
    from client.tui.launch import run_app

    root = args.dir or Path(tempfile.mkdtemp(prefix="pocketscan-demo-"))
    if args.dir and (root / "you").exists():
        print(f"pocketscan: {root} already holds a demo; choose an empty --dir", file=sys.stderr)
        return 2
    runtime = DemoRuntime(root, policy=args.policy)
    try:
        from scanner.progress import progress_bar

        with progress_bar("demo: starting relay, authority, snapshot and bot", None, quiet=args.check):
            info = runtime.start()
        if args.check:
            summary = {"relay": info.relay_url, "authority_pubkey": info.authority_pubkey,
                       "bot": info.bot_account, "banked": [p.name for p in info.banked],
                       "clean": [p.name for p in info.clean]}
            if args.dir:  # without --dir everything is removed on exit: no path to a deleted folder
                summary["profile"] = str(info.user_profile)
            print(json.dumps(summary))
            return 0
        core = runtime.open_user()
        samples = info.banked[0].parent if info.banked else None
        return run_app(core=core, image_dir=samples)
    except Exception as exc:
        print(f"pocketscan demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        runtime.stop(remove=args.dir is None)
