"""The main screen: contacts and scanner panel on the left, conversation and composer on the right."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from client.interfaces import (
    ChatCore,
    ConnectionChanged,
    CoreEvent,
    DeliveryChanged,
    KeyChanged,
    MessageReceived,
    MessageView,
    SendOutcome,
    SnapshotChanged,
)
from client.policy import POLICIES, parse_policy
from client.tui.messages import (
    ContactAdded,
    ContactsLoaded,
    ConversationLoaded,
    CoreEventArrived,
    OperationFailed,
    SafetyLoaded,
    SendFinished,
)
from client.tui.screens.add_contact import AddContactRequest, AddContactScreen
from client.tui.screens.file_picker import FilePickerScreen
from client.tui.screens.safety import SafetyNumberScreen
from client.tui.screens.sensitive_confirm import confirm_screen_for
from client.tui.widgets.banner import VerdictBanner
from client.tui.widgets.contacts import ContactList
from client.tui.widgets.conversation import Conversation
from client.tui.widgets.not_sent import NotSentLog
from client.tui.widgets.scanner_panel import ScannerPanel

__all__ = ["ChatScreen"]

HELP = ("Commands: /image PATH · /forward CONTACT (the last image here) · /policy off|warn|block|report · "
        "/safety · /add ACCOUNT [NAME] · /invite · /protect (ctrl+p) · /appeal (ctrl+y, the last block)")


class ChatScreen(Screen[None]):
    """Everything a conversation needs; talks to the core only from workers."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "add_contact", "Add contact", priority=True),
        Binding("ctrl+o", "attach", "Attach image", priority=True),
        Binding("ctrl+g", "safety", "Safety no.", priority=True),
        Binding("ctrl+r", "cycle_policy", "Policy", priority=True),
        Binding("ctrl+p", "protect", "Protect a photo", priority=True, show=False),
        Binding("ctrl+y", "appeal", "Appeal block", priority=True, show=False),
        Binding("tab", "app.focus_next", "Focus", show=False),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
        Binding("ctrl+e", "reveal", "Reveal image", show=False, priority=True),
    ]

    def __init__(self, core: ChatCore, *, image_dir: Path | None = None) -> None:
        super().__init__()
        self.core = core
        self.image_dir = image_dir or Path.cwd()
        self.current: str | None = None
        self.connected = False
        # Conversation loads run in a worker: a message that arrives after the worker read the history
        # but before the screen shows it is kept here and added when the load lands.
        self._load_requested = 0
        self._load_shown = 0
        self._arrived_while_loading: list[MessageView] = []
        self.not_sent = NotSentLog()  # blocked images stay in their conversation as "not sent" items
        self.last_blocked: Path | None = None
        """The last image the policy blocked (ctrl+y appeals it)."""

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="◈")
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield ContactList(id="contacts")
                yield ScannerPanel(id="scanner")
            with Vertical(id="chat"):
                yield Conversation(id="conversation", loader=lambda m: self.core.messages.image_bytes(m.id))
                banner = VerdictBanner("", id="banner")
                banner.display = False
                yield banner
                yield Input(placeholder="Message, or /image PATH  (/help)", id="composer")
        yield Footer()

    async def on_mount(self) -> None:
        self.title = "pocketscan"

        def _listener(event: CoreEvent) -> None:
            self.post_message(CoreEventArrived(event))

        self.core.subscribe(_listener)
        self.connected = self.core.connected
        self._update_subtitle()
        self.query_one(ScannerPanel).show(self.core.snapshot.status())
        await self.query_one(Conversation).show(None, [], "Add a contact with ctrl+n")
        self.open_conversation(None)
        self.query_one("#composer", Input).focus()
        self.set_interval(30, self._tick)

    def _tick(self) -> None:
        self.query_one(ScannerPanel).show(self.core.snapshot.status())
        if self.core.connected != self.connected:
            self.connected = self.core.connected
            self._update_subtitle()

    def _update_subtitle(self) -> None:
        link = "connected" if self.connected else "offline"
        short_id = self.core.account_id[:8]
        name = self.core.display_name
        who = f"{short_id}…" if name in ("", short_id) else f"{name} · {short_id}…"  # no name: the id once
        self.sub_title = f"{who} · {link}"

    # -- store reads run in thread workers; results come back as messages --------------------------
    @work(thread=True, group="contacts-load")
    def refresh_contacts(self) -> None:
        self.post_message(ContactsLoaded(self.core.contacts.all()))

    def open_conversation(self, peer: str | None) -> None:
        """Load ``peer``'s conversation (None: the first contact's, if any) and mark it read."""
        self._load_requested += 1
        self._load_conversation(peer, self._load_requested)

    @work(thread=True, exclusive=True, group="conversation-load")
    def _load_conversation(self, peer: str | None, generation: int) -> None:
        contacts = self.core.contacts.all()
        if peer is None:
            if not contacts:
                self.post_message(ConversationLoaded("", contacts, [], generation))
                return
            peer = contacts[0].account_id
        self.core.contacts.mark_read(peer)
        contacts = self.core.contacts.all()
        history = self.core.messages.conversation(peer)
        self.post_message(ConversationLoaded(peer, contacts, history, generation))

    @work(thread=True, group="contacts-load")
    def _mark_read(self, peer: str) -> None:
        self.core.contacts.mark_read(peer)
        self.post_message(ContactsLoaded(self.core.contacts.all()))

    @on(ContactsLoaded)
    async def _contacts_loaded(self, message: ContactsLoaded) -> None:
        await self.query_one(ContactList).show(message.contacts, self.current)

    @on(ConversationLoaded)
    async def _conversation_loaded(self, message: ConversationLoaded) -> None:
        if message.generation != self._load_requested:
            return  # a newer open_conversation is under way
        self._load_shown = message.generation
        arrived, self._arrived_while_loading = self._arrived_while_loading, []
        if not message.peer:  # no contacts yet
            await self.query_one(ContactList).show(message.contacts, self.current)
            return
        peer = message.peer
        self.current = peer
        contact = next((c for c in message.contacts if c.account_id == peer), None)
        title = contact.label if contact else peer
        if contact and contact.key_changed:
            title += "  ⚠ KEY CHANGED"
        elif contact and contact.verified:
            title += "  ✓ verified"
        await self.query_one(Conversation).show(peer, message.messages, title)
        await self.not_sent.restore(self.query_one(Conversation), peer)
        await self.query_one(ContactList).show(message.contacts, self.current)
        late = [m for m in arrived if m.peer == peer]
        for late_message in late:
            await self.query_one(Conversation).add(late_message)  # ignores ids it already shows
        if late:
            self._mark_read(peer)

    # -- composer ---------------------------------------------------------------------------------
    @on(Input.Submitted, "#composer")
    async def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if not text:
            return
        if text.startswith("/"):
            await self._command(text)
            return
        if self.current is None:
            self.banner().show_text("Choose or add a contact first (ctrl+n).")
            return
        self.send_text(self.current, text)

    async def _command(self, text: str) -> None:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        cmd, args = parts[0].lower(), parts[1:]
        if cmd == "/image" and args:
            path = Path(" ".join(args)).expanduser()
            if not path.exists() and (self.image_dir / path).exists():
                path = self.image_dir / path
            if self.current is None:
                self.banner().show_text("Choose or add a contact first (ctrl+n).")
            else:
                self.send_image(self.current, path)
        elif cmd == "/policy" and args:
            try:
                policy = parse_policy(args[0])
            except ValueError as exc:
                self.banner().show_text(str(exc))
                return
            self.set_policy(policy)
        elif cmd == "/forward" and args:
            if self.current is None:
                self.banner().show_text("Open the conversation with the image first.")
            else:
                self.forward_last_image(self.current, " ".join(args))
        elif cmd == "/safety":
            self.action_safety()
        elif cmd == "/add" and args:
            self.add_contact(AddContactRequest(args[0], " ".join(args[1:])))
        elif cmd == "/protect":
            self.action_protect()
        elif cmd == "/appeal":
            self.action_appeal()
        elif cmd == "/invite":
            self.banner().show_text(f"Your invite code: {self.core.invite_code()}", "sent")
        elif cmd in ("/help", "/?"):
            self.banner().show_text(HELP, "confirm")
        else:
            from rich.markup import escape

            known = ("/image", "/policy", "/forward", "/add")
            why = f"{cmd} needs an argument." if cmd in known else f"Unknown command {cmd}."
            self.banner().show_text(f"{escape(why)} {HELP}", "error")

    def banner(self) -> VerdictBanner:
        return self.query_one(VerdictBanner)

    # -- workers (the only callers of the core's async API) ---------------------------------------
    @work(group="send")
    async def send_text(self, peer: str, text: str) -> None:
        try:
            outcome = await self.core.sender.send_text(peer, text)
        except Exception as exc:  # shown to the user, never swallowed
            self.post_message(OperationFailed(f"Could not send: {exc}"))
            return
        self.post_message(SendFinished(peer, outcome))

    @work(group="send")
    async def send_image(self, peer: str, path: Path, confirmed: bool = False) -> None:
        self.banner().show_text(f"Scanning {path.name}…", "confirm")
        try:
            outcome = await self.core.sender.send_image(peer, path, confirmed=confirmed)
        except Exception as exc:
            self.post_message(OperationFailed(f"Could not send {path.name}: {exc}"))
            return
        self.post_message(SendFinished(peer, outcome, path=str(path)))

    @work(group="send")
    async def forward_last_image(self, source: str, target: str, confirmed: bool = False) -> None:
        """Forward the newest image of ``source``'s conversation: scanned again, like any outgoing image."""
        try:
            peer = await asyncio.to_thread(self.core.contacts.resolve, target)
            images = [m for m in await asyncio.to_thread(self.core.messages.conversation, source)
                      if m.kind == "image" and m.path]
            if not images:
                self.post_message(OperationFailed("No image in this conversation to forward."))
                return
            outcome = await self.core.sender.forward_image(images[-1].id, peer, confirmed=confirmed)
        except Exception as exc:
            self.post_message(OperationFailed(f"Could not forward: {exc}"))
            return
        self.post_message(SendFinished(peer, outcome, path=images[-1].path))

    @work(group="contacts")
    async def add_contact(self, request: AddContactRequest) -> None:
        try:
            contact = await self.core.contacts.add(request.account_or_invite, request.name)
        except Exception as exc:
            self.post_message(OperationFailed(f"Could not add contact: {exc}"))
            return
        self.post_message(ContactAdded(contact))

    @work(group="settings")
    async def set_policy(self, policy: str) -> None:
        await self.core.set_policy(parse_policy(policy))
        self.query_one(ScannerPanel).show(self.core.snapshot.status())
        self.banner().show_text(f"Policy is now {policy}.", "sent")

    # -- results ----------------------------------------------------------------------------------
    @on(SendFinished)
    async def _sent(self, message: SendFinished) -> None:
        outcome: SendOutcome = message.outcome
        name = Path(message.path).name if message.path else ""
        if outcome.message is not None:
            await self.query_one(Conversation).add(outcome.message)
        if message.path is None and outcome.status == "sent":
            return
        if outcome.status == "confirm" and message.path:
            self.banner().show_outcome(outcome, name)
            path = Path(message.path)

            def _answer(send: bool | None) -> None:
                if send:
                    self.send_image(message.peer, path, True)
                else:
                    self.banner().show_text(f"Cancelled: {name} was not sent.", "blocked")
                    self.run_worker(self.not_sent.record(self.query_one(Conversation), message.peer, name,
                                                         outcome))

            self.app.push_screen(confirm_screen_for(outcome, name), _answer)
            return
        if outcome.status in ("blocked", "reported") and message.path:
            self.last_blocked = Path(message.path)
        self.banner().show_outcome(outcome, name)
        if message.path and outcome.status in ("blocked", "reported"):
            await self.not_sent.record(self.query_one(Conversation), message.peer, name, outcome)

    @on(ContactAdded)
    def _contact_added(self, message: ContactAdded) -> None:
        self.banner().show_text(f"Added {message.contact.label}.", "sent")
        self.open_conversation(message.contact.account_id)

    @on(OperationFailed)
    def _failed(self, message: OperationFailed) -> None:
        self.banner().show_text(message.text, "error")

    @on(CoreEventArrived)
    async def _core_event(self, message: CoreEventArrived) -> None:
        event = message.event
        if isinstance(event, MessageReceived):
            if self._load_shown != self._load_requested:
                self._arrived_while_loading.append(event.message)
                self.refresh_contacts()
            elif event.message.peer == self.current:
                await self.query_one(Conversation).add(event.message)
                self._mark_read(event.message.peer)
            else:
                self.refresh_contacts()
        elif isinstance(event, DeliveryChanged):
            if event.peer == self.current:
                self.query_one(Conversation).set_state(event.message_id, event.state)
        elif isinstance(event, KeyChanged):
            self.refresh_contacts()
            self.banner().show_text(
                f"⚠ SAFETY NUMBER CHANGED for {event.peer}: verify it before trusting (ctrl+g).", "error")
            self.load_safety(event.peer)
        elif isinstance(event, SnapshotChanged):
            self.query_one(ScannerPanel).show(event.status)
        elif isinstance(event, ConnectionChanged):
            self.connected = event.connected
            self._update_subtitle()

    @on(ContactList.Chosen)
    def _chosen(self, message: ContactList.Chosen) -> None:
        self.open_conversation(message.peer)
        self.query_one("#composer", Input).focus()

    # -- actions ----------------------------------------------------------------------------------
    def action_add_contact(self) -> None:
        def _done(request: AddContactRequest | None) -> None:
            if request is not None:
                self.add_contact(request)

        self.app.push_screen(AddContactScreen(self.core.invite_code()), _done)

    def action_attach(self) -> None:
        if self.current is None:
            self.banner().show_text("Choose or add a contact first (ctrl+n).")
            return
        peer = self.current

        def _done(path: Path | None) -> None:
            if path is not None:
                self.send_image(peer, path)

        self.app.push_screen(FilePickerScreen(self.image_dir), _done)

    def action_safety(self) -> None:
        if self.current is not None:
            self.load_safety(self.current)

    @work(thread=True, group="safety")
    def load_safety(self, peer: str) -> None:
        contact = next((c for c in self.core.contacts.all() if c.account_id == peer), None)
        if contact is not None:
            self.post_message(SafetyLoaded(contact, self.core.contacts.safety_number(peer)))

    @on(SafetyLoaded)
    def _safety_loaded(self, message: SafetyLoaded) -> None:
        peer = message.contact.account_id

        def _done(verified: bool | None) -> None:
            if verified is not None:
                self.set_verified(peer, verified)

        self.app.push_screen(SafetyNumberScreen(message.contact, message.number), _done)

    @work(thread=True, group="safety")
    def set_verified(self, peer: str, verified: bool) -> None:
        self.core.contacts.set_verified(peer, verified)
        self.post_message(ContactsLoaded(self.core.contacts.all()))
        if peer == self.current:
            self.app.call_from_thread(self.open_conversation, peer)

    def action_protect(self) -> None:
        from client.tui.screens.protect import ProtectScreen

        def _picked(path: Path | None) -> None:
            if path is not None:
                self.app.push_screen(ProtectScreen(self.core, path), self._authority_done)  # type: ignore[arg-type]

        self.app.push_screen(FilePickerScreen(self.image_dir), _picked)

    def action_appeal(self) -> None:
        from client.tui.screens.protect import AppealScreen

        if self.last_blocked is None:
            self.banner().show_text("No blocked image to appeal yet.")
            return
        self.app.push_screen(AppealScreen(self.core, self.last_blocked), self._authority_done)  # type: ignore[arg-type]

    def _authority_done(self, summary: str | None) -> None:
        if summary:
            self.banner().show_text(summary, "sent")

    def action_cycle_policy(self) -> None:
        current = self.core.snapshot.status().policy
        self.set_policy(POLICIES[(POLICIES.index(current) + 1) % len(POLICIES)])

    def action_reveal(self) -> None:
        """Reveal the newest blurred (sensitive) received image in this conversation."""
        if not self.query_one(Conversation).reveal_last():
            self.banner().show_text("No blurred image to reveal in this conversation.", "confirm")
