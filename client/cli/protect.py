"""`pocketscan protect` and `pocketscan appeal`: the user's side of the authority loop (headless).

``protect --profile DIR PATH... [--yes]`` hashes each photo on the device, shows exactly what will leave
(the hashes, nothing else), asks for consent unless ``--yes``, seals the submission to the authority key and
queues it through the relay; one JSON line per path ``{"path", "status", "submission_id", "hashes"}``.
``appeal --profile DIR --image PATH [--reason TEXT] [--attach-image]`` prints ``{"status", "appeal_id"}``.
The decision comes back as a sealed message from the authority (``pocketscan inbox``, the TUI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.cli.registry import CommandRegistry
    from client.core import Core

__all__ = ["register"]

MAX_IMAGE = 25 * 1024 * 1024
CONNECT_TIMEOUT = 15.0


def register(registry: CommandRegistry) -> None:
    p = registry.command(
        "protect", _protect, help="ask the authority to block your own photos (only their hashes leave)",
        description="Hash your photos on this device (PDQ with its 8 dihedral variants, and the learned "
                    "hash), show exactly what will be sent, and, with your consent, send only those hashes, "
                    "sealed to the authority, through the relay. The photos never leave the device. "
                    "Prints one JSON line per path.",
        epilog="exit status: 0 when every path was submitted, 2 otherwise")
    _profile_arg(p)
    p.add_argument("paths", nargs="+", metavar="PATH", type=Path, help="photos to protect")
    p.add_argument("--yes", action="store_true", help="consent without asking (scripts)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the relay's acknowledgement (default: %(default)s)")

    p = registry.command(
        "appeal", _appeal, help="appeal the block of an image to the authority",
        description="Seal an appeal to the authority: the image's hashes, the snapshot version that blocks "
                    "it and your reason. The image itself is sent only with --attach-image (encrypted to the "
                    "authority, for a human reviewer). The decision arrives as a message from the authority.",
        epilog="exit status: 0 appealed, 2 on errors")
    _profile_arg(p)
    p.add_argument("--image", required=True, type=Path, metavar="PATH", help="the blocked image")
    p.add_argument("--reason", default="", help="why the block is a mistake (sent to the reviewers)")
    p.add_argument("--attach-image", action="store_true",
                   help="also send the image, encrypted so only the authority can read it")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the relay's acknowledgement (default: %(default)s)")


def _profile_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="profile directory (default: $POCKETSCAN_PROFILE or "
                             "~/.local/share/pocketscan/default)")


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size > MAX_IMAGE:
        raise ValueError(f"{path}: larger than {MAX_IMAGE} bytes")
    return path.read_bytes()


async def _flush(core: Core, timeout: float) -> bool:
    """Connect and wait until the relay acknowledged everything queued."""
    from client.cli.messaging import _flushed

    await core.start()
    await core.wait_connected(min(timeout, CONNECT_TIMEOUT))
    return await _flushed(core, timeout)


def _consent(lines: list[str]) -> bool:
    print("\n".join(lines), file=sys.stderr)
    if not sys.stdin.isatty():
        return False
    answer = input("Send these hashes to the authority? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _protect(args: argparse.Namespace) -> int:
    import asyncio

    from client.cli.messaging import _errors, _open_core
    from client.protect import image_hashes, submit_protection
    from scanner.errors import ScannerError

    hashed: list[tuple[Path, bytes, Any]] = []
    failed = False
    for path in args.paths:
        try:
            data = _read(path)
            hashed.append((path, data, image_hashes(data, name=path.name)))
        except (ValueError, OSError, ScannerError) as exc:
            _print({"path": str(path), "status": "error", "submission_id": None, "hashes": {},
                    "error": str(exc)})
            failed = True
    if not hashed:
        return 2
    if not args.yes:
        lines = ["What will leave this device, sealed to the authority (the photos stay here):"]
        for path, _data, h in hashed:
            learned = f", learned hash {h.onnx}" if h.onnx else ""
            lines.append(f"  {path}: PDQ {h.pdq} (quality {h.quality}) and its {len(h.pdq_dihedral)} rotated/"
                         f"flipped variants{learned}")
        if not _consent(lines):
            for path, _data, h in hashed:
                _print({"path": str(path), "status": "error", "submission_id": None, "hashes": h.to_dict(),
                        "error": "no consent: nothing was sent (run with --yes to consent)"})
            return 2
    try:
        core = _open_core(args)
    except _errors() as exc:
        for path, _data, h in hashed:
            _print({"path": str(path), "status": "error", "submission_id": None, "hashes": h.to_dict(),
                    "error": str(exc)})
        return 2

    async def go() -> list[dict[str, Any]]:
        results = []
        try:
            for path, data, h in hashed:
                try:
                    sub = submit_protection(core, data, name=path.name, hashes=h)
                    results.append({"path": str(path), "status": "submitted", "submission_id": sub.ref,
                                    "hashes": h.to_dict()})
                except _errors() as exc:
                    results.append({"path": str(path), "status": "error", "submission_id": None,
                                    "hashes": h.to_dict(), "error": str(exc)})
            if not await _flush(core, args.timeout):
                for r in results:
                    if r["status"] == "submitted":
                        r["queued"] = True
                        r["warning"] = ("the relay did not acknowledge in time; the submission stays in the "
                                        "outbox and is sent the next time this profile connects")
            return results
        finally:
            await core.stop()

    for result in asyncio.run(go()):
        failed = failed or result["status"] != "submitted"
        _print(result)
    return 2 if failed else 0


def _appeal(args: argparse.Namespace) -> int:
    import asyncio

    from client.cli.messaging import _errors, _open_core
    from client.protect import submit_appeal
    from scanner.errors import ScannerError

    try:
        data = _read(args.image)
        core = _open_core(args)
    except _errors() as exc:
        _print({"status": "error", "appeal_id": None, "error": str(exc)})
        return 2

    errors: tuple[type[BaseException], ...] = (ScannerError, *_errors())

    async def go() -> dict[str, Any]:
        try:
            if args.attach_image:
                await core.start()
            try:
                appeal = await submit_appeal(core, data, name=args.image.name, reason=args.reason,
                                             attach_image=args.attach_image)
            except errors as exc:
                return {"status": "error", "appeal_id": None, "error": str(exc)}
            out: dict[str, Any] = {"status": "appealed", "appeal_id": appeal.ref,
                                   "snapshot_version": appeal.body.get("snapshot_version"),
                                   "blocked": appeal.body.get("blocked"),
                                   "image_attached": args.attach_image}
            if not await _flush(core, args.timeout):
                out["warning"] = ("the relay did not acknowledge in time; the appeal stays in the outbox "
                                  "and is sent the next time this profile connects")
            return out
        finally:
            await core.stop()

    result = asyncio.run(go())
    _print(result)
    return 0 if result["status"] == "appealed" else 2
