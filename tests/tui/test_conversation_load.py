"""A message that arrives while its conversation is loading still shows (regression: the demo bot's welcome).

The chat screen reads a conversation's history in a worker. A message stored after the worker read the
history, but delivered to the screen before the history is shown, used to be counted as unread and never
drawn: the tmux demo test saw "bot (1)" beside an empty conversation.
"""

from __future__ import annotations

import asyncio

from client.interfaces import MessageReceived, MessageView
from client.tui.app import PocketscanApp
from client.tui.widgets.conversation import MessageBubble, bubble_id
from tests.tui.fakes import BOB, REPO, T0, FakeCore, FakeMessages


class LateMessages(FakeMessages):
    """Delivers one new message from bob right after a worker has read bob's history."""

    core: ArrivesDuringLoad

    def conversation(self, peer: str, *, limit: int = 500) -> list[MessageView]:
        history = super().conversation(peer, limit=limit)
        core = self.core
        if peer == BOB and not core.delivered:
            core.delivered = True
            late = MessageView("late", BOB, "in", "text", text="welcome!", sent_at=T0 + 200, state="received")
            core._messages[BOB].append(late)
            core.hub.emit(MessageReceived(late))  # reaches the screen before the (stale) history does
        return history


class ArrivesDuringLoad(FakeCore):
    """The fake core with :class:`LateMessages`."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = False
        self.messages = LateMessages(self)


def test_message_arriving_during_a_conversation_load_is_shown() -> None:
    async def main() -> None:
        core = ArrivesDuringLoad()
        app = PocketscanApp(core=core, image_dir=REPO / "samples")
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if app.screen.query(MessageBubble).filter(f"#{bubble_id('late')}"):
                    break
            assert core.delivered
            ids = [bubble.message.id for bubble in app.screen.query(MessageBubble)]
            assert ids == ["m1", "m2", "m3", "late"], ids  # once, after the history
            assert core.contacts.all()[0].unread == 0  # read: it is on screen

    asyncio.run(main())
