"""A bot contact for the demo: answers texts, thanks for images and sends a photo back.

It is an ordinary pocketscan client (its own profile, keys and scanner); the photos it sends go
through its own scan-before-encrypt pipeline like anyone else's.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from client.core import Core
from client.interfaces import CoreEvent, MessageReceived, MessageView

__all__ = ["DemoBot"]


class DemoBot:
    """Replies to every message it receives (runs in the core's event loop)."""

    def __init__(self, core: Core, *, images: list[Path]) -> None:
        self.core = core
        self.images = itertools.cycle(images) if images else None
        self.replies = 0
        self._tasks: set[asyncio.Task[None]] = set()
        core.subscribe(self._on_event)

    def _on_event(self, event: CoreEvent) -> None:
        if isinstance(event, MessageReceived) and event.message.direction == "in":
            task = asyncio.get_running_loop().create_task(self._reply(event.message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def welcome(self, peer: str, banked: list[str], clean: list[str]) -> None:
        await self.core.sender.send_text(
            peer,
            "Hi, I'm the pocketscan demo bot. Every image you send is hashed (PDQ) and checked against "
            "the signed snapshot on YOUR device before it is encrypted. Try:\n"
            f"  /image {clean[0] if clean else 'coffee.jpg'}   (not in the demo bank: sent)\n"
            f"  /image {banked[0] if banked else 'rocket.jpg'}   (in the demo bank: policy decides)\n"
            "  /policy warn|block|report|off, ctrl+o to pick a file, ctrl+g for the safety number.",
        )

    async def _reply(self, message: MessageView) -> None:
        await asyncio.sleep(0.2)
        if message.kind == "text":
            text = message.text.strip()
            wants_image = any(word in text.lower() for word in ("photo", "image", "picture", "pic"))
            await self.core.sender.send_text(message.peer, f"bot: you said \u201c{text[:200]}\u201d")
            if wants_image:
                await self._send_photo(message.peer)
        else:
            name = Path(message.path).name if message.path else "your image"
            await self.core.sender.send_text(message.peer, f"bot: got your photo ({name}). Here is one back:")
            await self._send_photo(message.peer)
        self.replies += 1

    async def _send_photo(self, peer: str) -> None:
        if self.images is None:
            return
        outcome = await self.core.sender.send_image(peer, next(self.images), confirmed=True)
        if outcome.status != "sent":
            await self.core.sender.send_text(peer, f"bot: my photo was not sent ({outcome.status})")

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
