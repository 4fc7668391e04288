"""The victim's client as its own process: open a profile, receive until a given text shows, report.

Usage: ``python tests/adversarial/receiver.py PROFILE TEXT TIMEOUT``. Prints JSON lines: ``connected``
(seconds since start), ``shown`` (when a message with TEXT was shown, and how many messages came
before it), then ``done`` with the process's peak RSS (``VmHWM``) in MB.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

START = time.monotonic()


def say(**fields: object) -> None:
    print(json.dumps({"t": round(time.monotonic() - START, 3), **fields}), flush=True)


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


async def main(profile: Path, text: str, timeout: float) -> int:
    from client.core import Core
    from client.interfaces import ConnectionChanged, CoreEvent, MessageReceived
    from client.locations import Profile

    core = Core.open(Profile(profile))
    seen: list[str] = []
    shown = asyncio.Event()

    def on_event(event: CoreEvent) -> None:
        if isinstance(event, ConnectionChanged) and event.connected:
            say(event="connected")
        if isinstance(event, MessageReceived):
            seen.append(event.message.text)
            if event.message.text == text and not shown.is_set():
                say(event="shown", before=len(seen) - 1)
                shown.set()

    core.subscribe(on_event)
    await core.start()
    try:
        await asyncio.wait_for(shown.wait(), timeout)
        await core.wait_idle(quiet=1.0, timeout=60)
    except TimeoutError:
        say(event="timeout", received=len(seen))
    finally:
        await core.stop()
    failed = sum(1 for t in seen if "could not be shown" in t)
    say(event="done", received=len(seen), failed=failed, hwm_mb=round(peak_mb(), 1),
        last_error=core.last_error[:200])
    return 0 if shown.is_set() else 1


if __name__ == "__main__":
    import os

    if os.environ.get("POCKETSCAN_RECEIVER_PROFILE"):  # cProfile statistics of the whole run
        import cProfile

        with cProfile.Profile() as prof:
            status = asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
        prof.dump_stats(os.environ["POCKETSCAN_RECEIVER_PROFILE"])
        raise SystemExit(status)
    raise SystemExit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]))))
