"""The contacts list with unread counts and trust marks."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from client.interfaces import ContactView

__all__ = ["ContactList"]


def _label(contact: ContactView) -> str:
    mark = "!" if contact.key_changed else ("✓" if contact.verified else " ")
    name = contact.label if len(contact.label) <= 16 else contact.label[:15] + "…"
    unread = f" ({contact.unread})" if contact.unread else ""
    return f"{mark} {name}{unread}"


class ContactItem(ListItem):
    def __init__(self, contact: ContactView) -> None:
        super().__init__(Label(_label(contact)), id=f"contact-{contact.account_id}")
        self.contact = contact
        if contact.unread:
            self.add_class("unread")
        if contact.key_changed:
            self.add_class("key-changed")


class ContactList(ListView):
    """Contacts; selecting one opens its conversation."""

    class Chosen(Message):
        def __init__(self, peer: str) -> None:
            super().__init__()
            self.peer = peer

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Contacts"
        self._ids: list[str] = []

    async def show(self, contacts: list[ContactView], current: str | None) -> None:
        """Replace the items (keeps the highlighted contact)."""
        await self.clear()
        self._ids = [c.account_id for c in contacts]
        await self.extend([ContactItem(contact) for contact in contacts])
        if current in self._ids:
            self.index = self._ids.index(current)

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ContactItem):
            self.post_message(self.Chosen(event.item.contact.account_id))
