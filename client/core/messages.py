"""Messages: stored conversations as front ends see them, their sealed images, and the CLI inbox.

:meth:`Messages.view` turns a stored :class:`~client.store.MessageRecord` into a
:class:`~client.interfaces.MessageView`; it is total (a hostile stored row becomes a "could not be
shown" view, never an exception). Images live in the sealed media store (``client.media_store``);
a message holds only the local random reference. The *CLI inbox* is the list of received messages
``pocketscan inbox`` has not printed yet.

Collaborators: the encrypted store, the sealed media store and an error note callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from client.content import safe_dimension
from client.core.shared import Shared
from client.interfaces import MessageView
from client.media_store import MediaError, MediaStore, is_media_ref
from client.sensitive import SensitiveResult
from client.store import MessageRecord, Store

__all__ = ["CLI_INBOX", "Messages"]

CLI_INBOX = "cli_inbox"
"""Store setting: ids of received messages not yet printed by ``pocketscan inbox``."""
_CLI_INBOX_CAP = 9_999
"""At most this many (plus the new one) ids wait in the CLI inbox; older ones are dropped."""
_MEDIA_SEALED = "media_sealed"
"""Store flag: clear images left by an older pocketscan were sealed."""


@dataclass(eq=False, repr=False)
class Messages:
    """Conversations, images and the CLI inbox over the store."""

    store: Store
    shared: Shared
    media: MediaStore

    def view(self, m: MessageRecord) -> MessageView:
        """The front ends' view of a stored message (total: a hostile stored row never raises here)."""
        try:
            return self._view_of(m)
        except Exception:
            return MessageView(str(m.msg_id)[:64], m.peer, "in", "text", state="failed",
                               text="a stored message could not be shown: it is malformed")

    def _view_of(self, m: MessageRecord) -> MessageView:
        verdict = m.verdict if isinstance(m.verdict, dict) else {}
        label = ""
        if m.kind == "image":
            dims = ""
            width = safe_dimension(m.attachment.width) if m.attachment is not None else None
            height = safe_dimension(m.attachment.height) if m.attachment is not None else None
            if width and height:
                dims = f" {width}x{height}"
            name = verdict.get("name")
            label = (name if isinstance(name, str) and name else "photo")[:128] + dims
        path = str(self.media.path(m.local_path)) if is_media_ref(m.local_path) else None
        outcome, votes = verdict.get("outcome"), verdict.get("votes")
        rating = SensitiveResult.from_dict(verdict.get("sensitive"))
        return MessageView(m.msg_id, m.peer, m.direction, m.kind, text=m.body or "", path=path,
                           state=m.state, sent_at=float(m.sent_at),
                           verdict=outcome if isinstance(outcome, str) else None,
                           votes=votes if isinstance(votes, int) and 0 <= votes <= 1024 else None,
                           label=label, sensitive=rating is not None and rating.flagged)

    def conversation(self, peer: str, *, limit: int = 500) -> list[MessageView]:
        """The last ``limit`` messages with ``peer``, oldest first."""
        return [self.view(m) for m in self.store.messages.conversation(peer, limit=limit)]

    def get(self, msg_id: str) -> MessageView | None:
        m = self.store.messages.get(msg_id)
        return None if m is None else self.view(m)

    def image_bytes(self, msg_id: str) -> bytes | None:
        """A stored image, decrypted in memory (None if there is none or it cannot be opened)."""
        message = self.store.messages.get(msg_id)
        if message is None or message.kind != "image" or not is_media_ref(message.local_path):
            return None
        assert message.local_path is not None
        try:
            return self.media.get(message.local_path)
        except MediaError as exc:
            self.shared.note_error(f"image {msg_id} cannot be shown: {exc}")
            return None

    def queue_for_cli(self, msg_id: str) -> None:
        """Add a received message to the CLI inbox (call inside the transaction that stores it)."""
        queue = list(self.store.settings.get(CLI_INBOX, []))[-_CLI_INBOX_CAP:]
        self.store.settings.set(CLI_INBOX, [*queue, msg_id])

    def cli_inbox_waiting(self) -> bool:
        """True if ``pocketscan inbox`` has messages to print."""
        return bool(self.store.settings.get(CLI_INBOX, []))

    def take_cli_inbox(self) -> list[MessageView]:
        """Messages received since the last call (for ``pocketscan inbox``), oldest first."""
        ids = list(self.store.settings.get(CLI_INBOX, []))
        out = [v for v in (self.get(i) for i in ids) if v is not None]
        self.store.settings.set(CLI_INBOX, [])
        return out

    def adopt_plaintext_media(self, media_dir: Path) -> None:
        """Seal clear images an older pocketscan left in ``media_dir`` (once per profile)."""
        if self.store.settings.get(_MEDIA_SEALED, False):
            return
        for contact in self.store.contacts.all():
            for m in self.store.messages.conversation(contact.account_id):
                if m.kind != "image" or not m.local_path or is_media_ref(m.local_path):
                    continue
                ref = self.media.adopt_plaintext(Path(m.local_path))
                self.store.messages.update(m.msg_id, local_path=ref or "")
        for leftover in media_dir.glob("*"):  # clear files no message points to
            if leftover.is_file() and not leftover.name.endswith(".sealed"):
                leftover.unlink()
        self.store.settings.set(_MEDIA_SEALED, True)
