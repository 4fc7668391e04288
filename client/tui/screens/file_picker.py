"""Pick an image file to attach."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Static

from scanner.discovery import is_hidden, is_image_name

__all__ = ["FilePickerScreen", "ImageTree"]


class ImageTree(DirectoryTree):
    """Folders and image files only, no hidden entries (the ``scanner.discovery`` rules)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not is_hidden(p) and (p.is_dir() or is_image_name(p))]


def _display_path(root: Path) -> str:
    """The folder as a person would type it: relative to the working directory, else with ``~``."""
    resolved = root.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        pass
    try:
        return str(Path("~") / resolved.relative_to(Path.home().resolve()))
    except ValueError:
        return str(resolved)


class FilePickerScreen(ModalScreen[Path | None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(f"[b]Attach an image[/b]  ({_display_path(self.root)})  Enter: choose, Esc: cancel")
            yield ImageTree(self.root, id="tree")

    def on_mount(self) -> None:
        self.query_one(ImageTree).focus()

    @on(DirectoryTree.FileSelected)
    def _chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    def action_cancel(self) -> None:
        self.dismiss(None)
