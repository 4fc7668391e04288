"""A fake ChatCore for TUI snapshot tests: fixed data, no network, no clock; one fake per component port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from client.interfaces import (
    ContactView,
    CoreEvent,
    EventHub,
    MessageView,
    ScannerStatus,
    SendOutcome,
)
from client.policy import PolicyName, ScanOutcome, decide

REPO = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0

ALICE = "aliceaaaaaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "bobbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
CAROL = "carolccccccccccccccccccccccccccc"


class FakeContacts:
    """The fake's address book (``ContactsPort``)."""

    def __init__(self, core: FakeCore) -> None:
        self.core = core

    def all(self) -> list[ContactView]:
        return list(self.core._contacts.values())

    def mark_read(self, peer: str) -> None:
        from dataclasses import replace

        self.core._contacts[peer] = replace(self.core._contacts[peer], unread=0)

    async def add(self, account_or_invite: str, name: str = "") -> ContactView:
        contact = ContactView(account_or_invite, name)
        self.core._contacts[account_or_invite] = contact
        self.core._messages[account_or_invite] = []
        return contact

    def resolve(self, name_or_id: str) -> str:
        for c in self.core._contacts.values():
            if name_or_id in (c.name, c.account_id):
                return c.account_id
        raise KeyError(name_or_id)

    def safety_number(self, peer: str) -> str:
        return "".join(str(i % 10) for i in range(60))

    def set_verified(self, peer: str, verified: bool) -> None:
        from dataclasses import replace

        self.core._contacts[peer] = replace(self.core._contacts[peer], verified=verified, key_changed=False)


class FakeMessages:
    """The fake's conversations (``MessagesPort``)."""

    def __init__(self, core: FakeCore) -> None:
        self.core = core

    def conversation(self, peer: str, *, limit: int = 500) -> list[MessageView]:
        return list(self.core._messages.get(peer, []))[-limit:]

    def image_bytes(self, msg_id: str) -> bytes | None:
        msg = next((m for msgs in self.core._messages.values() for m in msgs if m.id == msg_id), None)
        return None if msg is None or msg.path is None else Path(msg.path).read_bytes()


class FakeSender:
    """The fake's sends (``SenderPort``): ``banked`` names match, the core's ``policy`` decides."""

    def __init__(self, core: FakeCore) -> None:
        self.core = core

    async def send_text(self, peer: str, text: str) -> SendOutcome:
        core = self.core
        core.sent.append((peer, text))
        msg = MessageView(core._next(), peer, "out", "text", text=text, sent_at=T0 + 120, state="sent")
        core._messages[peer].append(msg)
        return SendOutcome("sent", msg)

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome:
        core = self.core
        matched = path.name in core.banked
        scan = ScanOutcome("match" if matched else "no_match", votes=5 if matched else 0, min_votes=2,
                          quality=100, snapshot_version=3, snapshot_fingerprint="5e" * 32)
        decision = decide(scan, core.policy)
        if decision.action == "confirm" and not confirmed:
            return SendOutcome("confirm", None, scan, decision)
        if decision.action in ("block", "report"):
            return SendOutcome("blocked" if decision.action == "block" else "reported", None, scan, decision)
        msg = MessageView(core._next(), peer, "out", "image", path=str(path), sent_at=T0 + 120, state="sent",
                          verdict=scan.outcome, votes=scan.votes)
        core._messages[peer].append(msg)
        core.sent.append((peer, str(path)))
        return SendOutcome("sent", msg, scan, decision)

    async def forward_image(self, msg_id: str, peer: str, *, confirmed: bool = False) -> SendOutcome:
        msg = next(m for msgs in self.core._messages.values() for m in msgs if m.id == msg_id)
        assert msg.path is not None
        return await self.send_image(peer, Path(msg.path), confirmed=confirmed)


class FakeSnapshot:
    """The fake's scanner status (``SnapshotPort``)."""

    def __init__(self, core: FakeCore) -> None:
        self.core = core

    def status(self) -> ScannerStatus:
        return ScannerStatus(policy=self.core.policy, dihedral=True, version=3, fingerprint="5e" * 32,
                             created_at=T0 - 3600, min_votes=2, authority_key_id="a1b2c3d4e5f60718")


class FakeCore:
    """Deterministic data for screenshots; ``banked`` names are reported as matches."""

    def __init__(self, *, banked: tuple[str, ...] = ("rocket.jpg",), key_changed: bool = False) -> None:
        self.hub = EventHub()
        self.policy: PolicyName = "block"
        self.banked = banked
        self._contacts = {
            BOB: ContactView(BOB, "bob", unread=0, verified=True),
            CAROL: ContactView(CAROL, "carol", unread=2, key_changed=key_changed),
        }
        self._messages: dict[str, list[MessageView]] = {
            BOB: [
                MessageView("m1", BOB, "in", "text", text="hi! send me the coffee photo?", sent_at=T0,
                            state="received"),
                MessageView("m2", BOB, "out", "text", text="sure, one sec", sent_at=T0 + 60,
                            state="delivered"),
                MessageView("m3", BOB, "out", "image", path=str(REPO / "samples" / "coffee.jpg"),
                            sent_at=T0 + 90, state="sent", verdict="no_match", votes=0),
            ],
            CAROL: [],
        }
        self.sent: list[tuple[str, str]] = []
        self._n = 10
        self.contacts = FakeContacts(self)
        self.messages = FakeMessages(self)
        self.sender = FakeSender(self)
        self.snapshot = FakeSnapshot(self)

    @property
    def account_id(self) -> str:
        return ALICE

    @property
    def display_name(self) -> str:
        return "alice"

    @property
    def connected(self) -> bool:
        return True

    def subscribe(self, listener: Callable[[CoreEvent], None]) -> None:
        self.hub.subscribe(listener)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def invite_code(self) -> str:
        return f"psinv:{ALICE}"

    def _next(self) -> str:
        self._n += 1
        return f"m{self._n}"

    async def set_policy(self, policy: PolicyName) -> None:
        self.policy = policy
