""""Protect a photo" and "Appeal a block": the TUI side of the authority loop (``client/protect.py``).

:class:`ProtectScreen` hashes the chosen photo on the device, shows a thumbnail (on screen only) and exactly
what would leave (the PDQ hash, its eight dihedral variants, the learned hash: nothing else), and sends the
sealed submission only when the user presses "Send hashes". :class:`AppealScreen` asks for a reason and,
as a separate explicit choice, whether to attach the image (encrypted to the authority) for a human
reviewer. Both dismiss with a one-line summary for the banner, or None when cancelled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from client.tui.widgets.thumbnail import HalfBlockImage, load_thumbnail_pixels

__all__ = ["AppealScreen", "AuthorityPort", "ProtectScreen"]


class AuthorityPort(Protocol):
    """What these screens ask of the core (``client.core.Core`` implements it)."""

    async def protect_image(self, path: Path, *, hashes: Any = None) -> Any: ...

    async def appeal_image(self, path: Path, *, reason: str, attach_image: bool = False) -> Any: ...


def _hash(path: Path) -> Any:
    from client.protect import image_hashes

    return image_hashes(path.read_bytes(), name=path.name)


def _thumbnail(path: Path) -> HalfBlockImage:
    """The on-screen thumbnail, decoded through the image guard (a label if it is refused)."""
    try:
        return HalfBlockImage(load_thumbnail_pixels(path.read_bytes(), width=24, max_rows=6))
    except Exception:  # a thumbnail must never stop the screen; hashing reports the real error
        return HalfBlockImage(label="no preview")


class ProtectScreen(ModalScreen[str | None]):
    """Hash a photo here, show what leaves, send only with consent."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, core: AuthorityPort, path: Path) -> None:
        super().__init__()
        self.core = core
        self.path = path
        self.hashes: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]Protect a photo: {escape(self.path.name)}[/b]", id="protect-title")
            yield Static(HalfBlockImage(label="loading image…"), id="protect-thumb")
            yield Static("Hashing on this device…", id="protect-text")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", variant="primary", id="cancel")
                yield Button("Send hashes", variant="warning", id="send", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.compute()

    @work(group="protect-hash")
    async def compute(self) -> None:
        self.query_one("#protect-thumb", Static).update(await asyncio.to_thread(_thumbnail, self.path))
        try:
            self.hashes = await asyncio.to_thread(_hash, self.path)
        except Exception as exc:  # an undecodable file: say so, send nothing
            self.query_one("#protect-text", Static).update(f"Cannot hash this file: {escape(str(exc))}")
            return
        h = self.hashes
        lines = ["Only these hashes leave this device, sealed so only the authority can read them. "
                 "The photo itself stays here (the thumbnail is shown on this screen only).", "",
                 f"PDQ hash (quality {h.quality}), with {len(h.pdq_dihedral)} rotated and flipped variants:",
                 h.pdq]
        if h.onnx:
            lines += ["learned hash:", h.onnx]
        lines += ["", "If a reviewer accepts, copies of this photo are blocked on every pocketscan client."]
        self.query_one("#protect-text", Static).update("\n".join(lines))
        self.query_one("#send", Button).disabled = False

    @on(Button.Pressed, "#send")
    def _send(self) -> None:
        self.query_one("#send", Button).disabled = True
        self.submit()

    @work(group="protect-send")
    async def submit(self) -> None:
        try:
            sub = await self.core.protect_image(self.path, hashes=self.hashes)
        except Exception as exc:
            self.query_one("#protect-text", Static).update(f"Not sent: {escape(str(exc))}")
            return
        self.dismiss(f"Protection request {sub.ref[:8]} for {self.path.name} sent to the authority "
                     "(only its hashes).")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class AppealScreen(ModalScreen[str | None]):
    """Appeal the block of an image: a reason, and the image only if the user ticks the box."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, core: AuthorityPort, path: Path) -> None:
        super().__init__()
        self.core = core
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]Appeal the block of {escape(self.path.name)}[/b]", id="appeal-title")
            yield Static("The authority receives the image's hashes, the snapshot version that blocked it "
                         "and your reason. A reviewer decides; the answer arrives as a message.",
                         id="appeal-text")
            yield Input(placeholder="Why is this block a mistake?", id="appeal-reason", max_length=2000)
            yield Checkbox("Attach the image for the reviewer (encrypted to the authority)", False,
                           id="appeal-attach")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", variant="primary", id="cancel")
                yield Button("Send appeal", variant="warning", id="send")

    def on_mount(self) -> None:
        self.query_one("#appeal-reason", Input).focus()

    @on(Button.Pressed, "#send")
    @on(Input.Submitted, "#appeal-reason")
    def _send(self) -> None:
        self.query_one("#send", Button).disabled = True
        reason = self.query_one("#appeal-reason", Input).value
        self.submit(reason, self.query_one("#appeal-attach", Checkbox).value)

    @work(group="appeal-send")
    async def submit(self, reason: str, attach: bool) -> None:
        try:
            appeal = await self.core.appeal_image(self.path, reason=reason, attach_image=attach)
        except Exception as exc:
            self.query_one("#appeal-text", Static).update(f"Not sent: {escape(str(exc))}")
            self.query_one("#send", Button).disabled = False
            return
        self.dismiss(f"Appeal {appeal.ref[:8]} for {self.path.name} sent"
                     + (" with the image." if attach else "."))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
