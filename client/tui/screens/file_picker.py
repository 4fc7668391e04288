"""Pick an image file to attach: browse from any folder, go up, go home, or type a path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Static

from scanner.discovery import is_hidden, is_image_name

__all__ = ["FilePickerScreen", "ImageTree"]

KEYS_HINT = "Enter choose · Backspace parent folder · ~ home · / type a path · Esc cancel"


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
    """A folder tree that can move anywhere: its parent, the home folder, or a typed path."""

    DEFAULT_CSS = """
    FilePickerScreen #tree { height: 1fr; }
    FilePickerScreen #picker-title { height: auto; }
    FilePickerScreen #picker-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "cancel", "Cancel"),
        Binding("backspace", "parent", "Parent folder", show=False),
        Binding("tilde", "home", "Home", show=False),
        Binding("slash", "type_path", "Type a path", show=False),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.expanduser().resolve()

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(self._title(), id="picker-title")
            yield Input(placeholder="type a folder or an image path, Enter to open (~ for home)",
                        id="picker-path")
            yield ImageTree(self.root, id="tree")
            yield Static(KEYS_HINT, id="picker-hint")

    def _title(self, error: str = "") -> str:
        text = f"[b]Attach an image[/b]  {escape(_display_path(self.root))}"
        return text + (f"\n[red]{escape(error)}[/red]" if error else "")

    def on_mount(self) -> None:
        self.query_one(ImageTree).focus()

    def go_to(self, folder: Path) -> None:
        """Show ``folder`` in the tree (resolved, ``~`` expanded)."""
        self.root = folder.expanduser().resolve()
        tree = self.query_one(ImageTree)
        tree.path = self.root
        self.query_one("#picker-title", Static).update(self._title())
        tree.focus()

    def action_parent(self) -> None:
        if self.root.parent != self.root:
            self.go_to(self.root.parent)

    def action_home(self) -> None:
        self.go_to(Path.home())

    def action_type_path(self) -> None:
        field = self.query_one("#picker-path", Input)
        field.value = str(self.root) + "/"
        field.cursor_position = len(field.value)
        field.focus()

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.root / path
        if path.is_dir():
            event.input.value = ""
            self.go_to(path)
        elif path.is_file() and is_image_name(path):
            self.dismiss(path.resolve())
        else:
            why = "not an image file" if path.is_file() else "no such file or folder"
            self.query_one("#picker-title", Static).update(self._title(f"{text}: {why}"))

    @on(DirectoryTree.FileSelected)
    def _chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    def action_cancel(self) -> None:
        self.dismiss(None)
