"""Messaging commands: account, contact, config, send, inbox, chat (the headless client and the TUI).

Every command takes ``--profile DIR`` (default ``$POCKETSCAN_PROFILE`` or a per-user directory).
A protected profile's passphrase comes from ``$POCKETSCAN_PASSPHRASE`` or a prompt. Output is
JSON for scripts; errors go to stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.cli.registry import CommandRegistry

if TYPE_CHECKING:
    from client.core import Core
    from client.interfaces import MessageView, SendOutcome
    from client.locations import Profile

__all__ = ["register"]

CONNECT_TIMEOUT = 15.0
ACK_TIMEOUT = 60.0
OFFLINE_BUDGET = CONNECT_TIMEOUT
"""Upper bound on the wait for the first connection attempt. A relay that is down refuses the connection
and the command answers ("queued" or a refusal) at once; only a host that does not answer at all makes it
wait, for the connection's own open timeout (10 s)."""


def _profile_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="profile directory (default: $POCKETSCAN_PROFILE or "
                             "~/.local/share/pocketscan/default)")


def register(registry: CommandRegistry) -> None:
    account = registry.group("account", help="create or show this profile's account")
    p = account.command("create", _account_create, help="create an account (identity keys, encrypted store)")
    _profile_arg(p)
    p.add_argument("--relay", required=True, metavar="ws://HOST:PORT", help="relay URL")
    p.add_argument("--authority-pubkey", required=True, metavar="HEX",
                   help="the bank authority's Ed25519 public key (64 hex): snapshots must be signed by it")
    p.add_argument("--no-passphrase", action="store_true",
                   help="store keys unencrypted (tests and demos only: protects nothing)")
    p.add_argument("--name", default="", help="display name (shown in invite codes)")
    p.add_argument("--policy", default="warn", choices=("off", "warn", "block", "report"),
                   help="initial scanning policy (default: warn)")
    p = account.command("show", _account_show, help="print this profile's account as JSON")
    _profile_arg(p)
    p.add_argument("--id", action="store_true", help="print only the account id (for scripts)")

    contact = registry.group("contact", help="manage contacts")
    p = contact.command("add", _contact_add, help="add a contact by account id or invite code")
    _profile_arg(p)
    p.add_argument("account", metavar="ACCOUNT_ID",
                   help="account id (any case, dashes allowed) or psinv: code")
    p.add_argument("--name", default="", help="a name to address the contact by")
    p = contact.command("list", _contact_list, help="list contacts as JSON Lines")
    _profile_arg(p)

    config = registry.group("config", help="read or change settings")
    p = config.command("set", _config_set,
                       help="change a setting (policy off|warn|block|report, dihedral, ...)",
                       epilog="examples:\n  pocketscan config set policy block\n"
                              "  pocketscan config set dihedral false\n"
                              "  pocketscan config set scan_received true\n"
                              "  pocketscan config set sensitive-content warn  # off, warn, blur, both\n"
                              "  pocketscan config set report-threshold 3   (default 1: report at once)\n"
                              "  pocketscan config set synthetic-vouchers 0.05   (default 0)\n"
                              "  pocketscan config set voucher-delay 3600   (mean seconds; default 0)")
    _profile_arg(p)
    p.add_argument("key", help="setting name: policy, dihedral, scan_received, relay, authority_pubkey, "
                              "name, sensitive-content, sensitive-model, report-threshold, "
                              "synthetic-vouchers, voucher-delay")
    p.add_argument("value")
    p = config.command("show", _config_show, help="print the settings as JSON")
    _profile_arg(p)

    p = registry.command("send", _send, help="send a text or an image (images are scanned first)",
                         description="Send a message. Images go through the on-device scan and the policy "
                                     "before they are encrypted; prints one JSON object.",
                         epilog="exit status: 0 when the command did what the policy says (a block is not a "
                                "failure), 2 on errors\n"
                                "relay down: a text answers at once with status queued (kept "
                                "encrypted, sent on the next connection);\nan image is refused at once "
                                "(status error, nothing queued)")
    _profile_arg(p)
    p.add_argument("--to", required=True, metavar="ACCOUNT_ID|NAME")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="T")
    what.add_argument("--image", metavar="PATH", type=Path)
    p.add_argument("--yes", action="store_true", help="under policy warn, send a flagged image anyway")
    p.add_argument("--timeout", type=float, default=ACK_TIMEOUT,
                   help="seconds to wait for the relay's acknowledgement (default 60)")

    p = registry.command("inbox", _inbox, help="fetch new messages and print them as JSON Lines")
    _profile_arg(p)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to this long for new messages to arrive (default: only what is queued)")
    p.add_argument("--save", metavar="DIR", type=Path, default=None,
                   help="decrypt received images into DIR (random file names) and print that path; "
                        "without it, path is the sealed file inside the profile (default: not saved)")

    p = registry.command("chat", _chat, help="the Textual messenger")
    _profile_arg(p)
    p.add_argument("--relay", default=None, metavar="ws://HOST:PORT",
                   help="relay URL (overrides the profile's)")
    p.add_argument("--authority-pubkey", default=os.environ.get("POCKETSCAN_AUTHORITY_PUBKEY", ""),
                   metavar="HEX", help="authority key for a new profile (onboarding)")


# ----- helpers ---------------------------------------------------------------------------------

def _fail(message: str) -> int:
    print(f"pocketscan: {message}", file=sys.stderr)
    return 2


def _profile(args: argparse.Namespace) -> Profile:
    from client.locations import Profile, default_profile_dir

    return Profile((Path(args.profile).expanduser() if args.profile else default_profile_dir()).absolute())


def _passphrase(*, confirm: bool) -> str:
    env = os.environ.get("POCKETSCAN_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        raise ValueError("a passphrase is needed: set POCKETSCAN_PASSPHRASE or use --no-passphrase")
    import getpass

    first = getpass.getpass("Passphrase for the local store: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise ValueError("the passphrases differ")
    if not first:
        raise ValueError("an empty passphrase protects nothing; use --no-passphrase explicitly")
    return first


def _open_core(args: argparse.Namespace, *, relay: str | None = None) -> Core:
    from client.core import Core
    from client.store import Store

    profile = _profile(args)
    passphrase = None
    if profile.store_file.exists() and Store.is_protected(profile.store_file):
        passphrase = _passphrase(confirm=False)
    return Core.open(profile, passphrase=passphrase, relay=relay)


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def _errors() -> tuple[type[BaseException], ...]:
    from client.config import ConfigError
    from client.errors import ClientError
    from client.net import NetError

    return (ClientError, NetError, ConfigError, ValueError, OSError)


# ----- account / contact / config ------------------------------------------------------------

def _account_create(args: argparse.Namespace) -> int:
    from client.core import Core

    try:
        passphrase = None if args.no_passphrase else _passphrase(confirm=True)
        core = Core.create(_profile(args), relay=args.relay,
                           authority_pubkey=args.authority_pubkey.strip().lower(),
                           passphrase=passphrase, name=args.name, policy=args.policy)
    except _errors() as exc:
        return _fail(str(exc))

    async def publish() -> bool:
        try:
            await core.start()
            if not await core.net.wait_first_attempt(OFFLINE_BUDGET):
                return False  # relay down: answer now, publish on the next connection
            return await core.publish_now(CONNECT_TIMEOUT)
        finally:
            await core.stop()

    published = _run(publish())
    if not published:
        print(f"pocketscan: warning: could not reach {args.relay}; the account's keys are published "
              "the next time this profile connects", file=sys.stderr)
    _print({"account_id": core.account_id, "invite": core.invite_code(), "published": published,
            "profile": str(core.profile.root)})
    return 0


def _account_show(args: argparse.Namespace) -> int:
    try:
        core = _open_core(args)
    except _errors() as exc:
        return _fail(str(exc))
    try:
        if args.id:
            print(core.account_id)
        else:
            _print(core.describe())
    finally:
        core.close()
    return 0


def _contact_add(args: argparse.Namespace) -> int:
    try:
        core = _open_core(args)
    except _errors() as exc:
        return _fail(str(exc))
    try:
        contact = _run(core.add_contact(args.account, args.name))
    except _errors() as exc:
        return _fail(f"{exc}" + (" (use another --name, or verify the safety number)"
                                 if "changed" in str(exc) else ""))
    finally:
        core.close()
    _print({"account_id": contact.account_id, "name": contact.name})
    return 0


def _contact_list(args: argparse.Namespace) -> int:
    try:
        core = _open_core(args)
    except _errors() as exc:
        return _fail(str(exc))
    try:
        for c in core.contacts():
            _print({"account_id": c.account_id, "name": c.name, "unread": c.unread, "verified": c.verified,
                    "key_changed": c.key_changed})
    finally:
        core.close()
    return 0


def _config_set(args: argparse.Namespace) -> int:
    from client.config import set_setting

    profile = _profile(args)
    if not profile.settings_file.exists():
        return _fail(f"no account in {profile.root}: run `pocketscan account create` first")
    try:
        core = _open_core(args)  # the store's key authenticates the settings file
    except _errors() as exc:
        return _fail(str(exc))
    try:
        from client.core import SETTINGS_MAC

        settings = set_setting(profile.settings_file, args.key, args.value,
                               key=core.store.derived_key(SETTINGS_MAC))
    except _errors() as exc:
        return _fail(str(exc))
    finally:
        core.close()
    from client.config import setting_name

    key = setting_name(args.key)
    _print({args.key: getattr(settings, key)})
    if key in ("sensitive_content", "sensitive_model") and settings.sensitive_content != "off":
        from client.sensitive import sensitive_note

        note = sensitive_note(settings.sensitive_model)
        if note:
            print(f"pocketscan: note: images are not rated until the classifier loads: {note}",
                  file=sys.stderr)
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from client.config import load_settings

    profile = _profile(args)
    try:
        _print(asdict(load_settings(profile.settings_file)))
    except _errors() as exc:
        return _fail(str(exc))
    return 0


# ----- send / inbox ----------------------------------------------------------------------------

def _outcome_json(outcome: SendOutcome, to: str) -> dict[str, Any]:
    out: dict[str, Any] = {"status": outcome.status, "to": to}
    if outcome.message is not None:
        out["id"] = outcome.message.id
    if outcome.scan is not None:
        scan = outcome.scan
        out.update(verdict=scan.outcome, votes=scan.votes, min_votes=scan.min_votes, quality=scan.quality,
                   snapshot_version=scan.snapshot_version, snapshot_fingerprint=scan.snapshot_fingerprint)
    if outcome.decision is not None:
        out.update(policy=outcome.decision.policy, decision=outcome.decision.action,
                   reason=outcome.decision.explanation)
    if outcome.error:
        out["error"] = outcome.error
    if outcome.sensitive is not None:
        out["sensitive"] = outcome.sensitive.as_dict()
    if outcome.status == "confirm":
        out["status"] = "blocked"
        out["needs_confirmation"] = True
        out["hint"] = "policy warn: re-run with --yes to send it anyway"
        if outcome.sensitive is not None and outcome.sensitive.flagged:
            out["hint"] = "sensitive-content warn: re-run with --yes to send it anyway"
    return out


def _send(args: argparse.Namespace) -> int:
    try:
        core = _open_core(args)
    except _errors() as exc:
        _print({"status": "error", "error": str(exc)})
        return 2

    async def go() -> dict[str, Any]:
        from client.interfaces import SendOutcome

        try:
            try:
                peer = core.resolve(args.to)
            except _errors() as exc:
                return _outcome_json(SendOutcome("error", error=str(exc)), args.to)
            await core.start()
            if not await core.net.wait_first_attempt(OFFLINE_BUDGET) and args.image is not None:
                return _outcome_json(SendOutcome("error", error=(
                    f"the relay {core.settings.relay} is not reachable: images are sent only while connected "
                    "(nothing was queued); try again once the relay is up")), peer)
            if args.text is not None:
                outcome = await core.send_text(peer, args.text)
            else:
                import asyncio
                import contextlib

                with contextlib.suppress(TimeoutError):  # scan against the relay's current snapshot
                    await asyncio.wait_for(core.net.snapshot_checked.wait(), CONNECT_TIMEOUT)
                outcome = await core.send_image(peer, args.image, confirmed=args.yes)
            result = _outcome_json(outcome, peer)
            if outcome.status == "queued" or (outcome.status == "sent" and not core.connected):
                result["status"] = "queued"
                result["detail"] = (f"the relay {core.settings.relay} is not reachable: the message is "
                                    "stored (encrypted) and sent the next time this profile connects "
                                    "(pocketscan inbox, send or chat)")
                return result
            if outcome.status in ("sent", "reported") and not await _flushed(core, args.timeout):
                result["status"] = "error"
                result["error"] = ("the relay did not acknowledge in time; the message stays in the outbox "
                                   "and is resent the next time this profile connects")
                if core.net.waiting:
                    result["delivery"] = "waiting"
                    reason = next(iter(core.net.waiting.values()))
                    result["error"] = (f"the relay refused it for now ({reason}); the message waits in the "
                                       "outbox and is retried with backoff")
            return result
        finally:
            await core.stop()

    result = _run(go())
    _print(result)
    if result.get("needs_confirmation") and (result.get("sensitive") or {}).get("label") == "sensitive":
        print(f"pocketscan: not sent: {result.get('reason', 'the image may be sensitive')}; "
              "re-run with --yes to send it anyway", file=sys.stderr)
    return 2 if result["status"] == "error" else 0


async def _flushed(core: Core, timeout: float) -> bool:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not core.outbox_due():
            return True
        await asyncio.sleep(0.05)
    return False


def _save_image(core: Core, m: MessageView, folder: Path) -> str | None:
    """Decrypt a received image into ``folder`` under a local random name (never the peer's id)."""
    from client.image_pipeline import image_info

    data = core.image_bytes(m.id)
    if data is None:
        return None
    ext = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
           "image/bmp": ".bmp", "image/tiff": ".tif"}.get(image_info(data)[0], ".bin")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{os.urandom(8).hex()}{ext}"
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return str(target)


def _message_json(m: MessageView, saved: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "from": m.peer, "type": m.kind}
    if m.kind == "text":
        out["text"] = m.text
    else:
        out["path"] = saved or m.path
        out["sealed"] = saved is None
        if m.text:
            out["error"] = m.text
        if m.verdict:
            out["verdict"] = m.verdict
        if m.sensitive:
            out["sensitive"] = True
    if m.state == "failed" and m.direction == "in":
        out["error"] = m.text  # "a message from X could not be shown: REASON"
    out["sent_at"] = m.sent_at
    return out


def _inbox(args: argparse.Namespace) -> int:
    try:
        core = _open_core(args)
    except _errors() as exc:
        return _fail(str(exc))

    async def go() -> int:
        import asyncio

        status = 0
        try:
            await core.start()
            if not (await core.net.wait_first_attempt(OFFLINE_BUDGET)
                    or (args.wait > 0 and await core.wait_connected(args.wait))):
                print(f"pocketscan: cannot reach the relay {core.settings.relay}; showing what is stored",
                      file=sys.stderr)
                status = 2
            else:
                await core.wait_idle(quiet=0.4, timeout=max(30.0, args.wait))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + args.wait
                while (args.wait > 0 and not core.store.settings.get("cli_inbox", [])
                       and loop.time() < deadline):
                    await asyncio.sleep(0.1)
                await core.wait_idle(quiet=0.4, timeout=30.0)
            for message in core.take_cli_inbox():
                saved = None
                if args.save is not None and message.kind == "image":
                    saved = _save_image(core, message, args.save)
                _print(_message_json(message, saved))
            if core.net.waiting:
                print(f"pocketscan: {len(core.net.waiting)} outgoing message(s) waiting: the relay refused "
                      "them for a quota (the recipient's mailbox is full); they stay in the outbox and are "
                      "retried", file=sys.stderr)
        finally:
            await core.stop()
        return status

    return int(_run(go()))


# ----- chat ------------------------------------------------------------------------------------

def _chat(args: argparse.Namespace) -> int:
    from client.tui.launch import ProfileLauncher, run_app

    launcher = ProfileLauncher(_profile(args), relay=args.relay, authority_pubkey=args.authority_pubkey)
    return run_app(launcher=launcher)
