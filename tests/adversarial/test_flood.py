"""Done when (issue 11): 1,000 hostile envelopes of at least 20 kinds, then one genuine message.

Four attacker accounts queue 1,000 hostile envelopes (26 kinds) in an offline victim's mailbox on
a real relay; a friend then sends one genuine message. The victim's client runs as its own process
(``receiver.py``): the genuine message must be shown (the time is measured and printed), its peak
RSS must stay under 512 MB, no file may appear outside its profile folder, and afterwards
``pocketscan inbox`` and the TUI must still work on that profile.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest

from client.core import Core
from client.locations import Profile
from client.tui.app import PocketscanApp
from client.tui.widgets.conversation import MessageBubble
from tests.adversarial.hostile import COFFEE, REPO, Attacker, arena, content, files_under, flat_png, pad

HOSTILE = 1000
ATTACKERS = 4
PEAK_LIMIT_MB = 512


def _nested(depth: int) -> Any:
    out: Any = "deep"
    for _ in range(depth):
        out = [out]
    return out


async def _blobs(attacker: Attacker) -> dict[str, Any]:
    coffee = await attacker.upload_image(COFFEE.read_bytes(), content_type="image/jpeg", width=600,
                                         height=400)
    huge = await attacker.upload_image(flat_png(13_000, 13_000), content_type="image/png", width=13_000,
                                       height=13_000)
    junk = os.urandom(3 * 1024 * 1024)
    return {"coffee": coffee, "huge": huge, "junk": await attacker.upload_raw(junk), "junk_digest": junk}


def _kinds(outside: Path, blobs: dict[str, Any]) -> dict[str, Callable[[], bytes | tuple[str, bytes]]]:
    """Each kind returns padded plaintext for the session, or ``("raw", envelope)`` sent as is."""
    import hashlib

    def img(**over: Any) -> bytes:
        ptr = dict(blobs["coffee"])
        msg_id = over.pop("msg_id", None)
        ptr.update(over)
        return pad(cbor2.dumps(content("image", msg_id, att=ptr)))

    def text(**over: Any) -> bytes:
        d = content("text", text="hi")
        d.update(over)
        return pad(cbor2.dumps(d))

    return {
        "envelope-garbage": lambda: ("raw", os.urandom(200)),
        "envelope-cbor": lambda: ("raw", cbor2.dumps({"v": 1, "b": b"x", "h": 5})),
        "bad-padding": lambda: cbor2.dumps(content("text", text="no padding")),
        "not-cbor": lambda: pad(b"\xff\xfe\xfd"),
        "unknown-kind": lambda: pad(cbor2.dumps(content("video", text="x"))),
        "id-traversal": lambda: img(msg_id="../snapshot", content_type="image/x-bin"),
        "id-absolute": lambda: img(msg_id=str(outside / "pwned")),
        "id-space": lambda: text(id="a b"),
        "id-long": lambda: text(id="x" * 65),
        "text-70k": lambda: text(text="A" * 70_000),
        "text-bytes": lambda: text(text=b"bytes"),
        "blob-id-long": lambda: img(blob_id="z" * 65),
        "blob-id-path": lambda: img(blob_id="../../etc/passwd"),
        "bignum-dimensions": lambda: img(width=10**5000, height=10**5000),
        "zero-width": lambda: img(width=0),
        "content-type-html": lambda: img(content_type="text/html"),
        "size-50mib": lambda: img(size=50 * 1024 * 1024),
        "blob-missing": lambda: img(blob_id="never" + os.urandom(8).hex()),
        "size-mismatch": lambda: img(blob_id=blobs["junk"], size=1000,
                                     digest=hashlib.sha256(blobs["junk_digest"]).digest()),
        "digest-mismatch": lambda: img(digest=bytes(32)),
        "png-169-megapixels": lambda: pad(cbor2.dumps(content("image", att=dict(blobs["huge"])))),
        "receipt-flood": lambda: pad(cbor2.dumps(content("receipt", rcpt=[os.urandom(12).hex()] * 300))),
        "timestamp-nan": lambda: text(t=math.nan),
        "extra-fields": lambda: text(evil={"a": [1, 2, 3]}),
        "cbor-tag-id": lambda: text(id=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)),
        "deep-nesting": lambda: text(text=_nested(500)),
    }


async def _flood(attacker: Attacker, victim: str, outside: Path, count: int, offset: int) -> None:
    kinds = list(_kinds(outside, await _blobs(attacker)).values())
    for i in range(count):
        made = kinds[(i + offset) % len(kinds)]()
        if isinstance(made, tuple):
            await attacker.send_envelope(victim, made[1])
        else:
            await attacker.send_plaintext(victim, made)


@pytest.mark.slow
def test_1000_hostile_envelopes_then_one_genuine_message(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    genuine = "genuine " + os.urandom(4).hex()
    report: dict[str, Any] = {}

    async def body() -> None:
        async with arena(tmp_path, attackers=ATTACKERS, victim_online=False) as a:
            victim = a.victim.account_id
            assert len(_kinds(outside, {"coffee": {}, "huge": {}, "junk": "", "junk_digest": b""})) >= 20
            per = HOSTILE // ATTACKERS
            await asyncio.gather(*(_flood(att, victim, outside, per, i * 7)
                                   for i, att in enumerate(a.attackers)))
            assert (await a.friend.send_text(victim, genuine)).status == "sent"
            for _ in range(600):
                if not a.friend.store.outbox.pending():
                    break
                await asyncio.sleep(0.05)
            before = {p for p in files_under(tmp_path) if "victim" not in p.relative_to(tmp_path).parts}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "tests" / "adversarial" / "receiver.py"), str(tmp_path / "victim"),
                genuine, "180", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(REPO)})
            out, err = await asyncio.wait_for(proc.communicate(), 400)
            lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
            events = {line["event"]: line for line in lines}
            assert proc.returncode == 0, (lines, err.decode()[-2000:])
            report.update(connected=events["connected"]["t"], shown=events["shown"]["t"],
                          before=events["shown"]["before"], **events["done"])
            after = {p for p in files_under(tmp_path) if "victim" not in p.relative_to(tmp_path).parts}
            new = {p for p in after - before if not p.name.startswith("relay.sqlite")}
            assert not new, f"files appeared outside the profile: {sorted(map(str, new))[:5]}"
            assert list(outside.iterdir()) == []
            # pocketscan inbox still works (and prints the failures as well as the genuine message)
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "client.cli.main", "inbox", "--profile", str(tmp_path / "victim"),
                cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(REPO)})
            cli_out, cli_err = await asyncio.wait_for(cli.communicate(), 120)
            assert cli.returncode == 0, cli_err.decode()
            printed = [json.loads(line) for line in cli_out.decode().splitlines()]
            assert any(m.get("text") == genuine for m in printed)
            assert sum(1 for m in printed if "error" in m) >= HOSTILE * 0.9
            # and the TUI opens the attackers' conversations without crashing
            core = Core.open(Profile(tmp_path / "victim"))
            app = PocketscanApp(core=core, image_dir=REPO / "samples")
            async with app.run_test(size=(100, 30)) as pilot:
                for _ in range(200):
                    await pilot.pause(0.05)
                    if app.screen.__class__.__name__ == "ChatScreen":
                        break
                for attacker in a.attackers[:2]:
                    app.screen.open_conversation(attacker.account_id)  # type: ignore[attr-defined]
                    for _ in range(200):
                        await pilot.pause(0.05)
                        if len(app.screen.query(MessageBubble)) >= 200:
                            break
                    assert len(app.screen.query(MessageBubble)) >= 200
                await app.workers.wait_for_complete()
                app.screen.open_conversation(a.friend.account_id)  # type: ignore[attr-defined]
                for _ in range(200):
                    await pilot.pause(0.05)
                    if any(b.message.text == genuine for b in app.screen.query(MessageBubble)):
                        break
                assert any(b.message.text == genuine for b in app.screen.query(MessageBubble))
                assert app.is_running

    asyncio.run(asyncio.wait_for(body(), 900))
    print(f"\n1,000 hostile envelopes then one genuine: connected after {report['connected']} s, "
          f"genuine shown at {report['shown']} s "
          f"({report['shown'] - report['connected']:.1f} s after connecting, "
          f"{report['before']} messages before it), peak RSS {report['hwm_mb']} MB, "
          f"{report['failed']} recorded as not shown")
    assert report["hwm_mb"] < PEAK_LIMIT_MB
