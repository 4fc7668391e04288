"""The verdict banner shown above the composer after each image."""

from __future__ import annotations

from textual.widgets import Static

from client.interfaces import SendOutcome

__all__ = ["VerdictBanner", "banner_text"]

_TITLES = {
    "sent": "SENT",
    "blocked": "BLOCKED",
    "reported": "BLOCKED + REPORTED",
    "confirm": "WARNING",
    "error": "ERROR",
    "queued": "QUEUED",
}


def banner_text(outcome: SendOutcome, name: str = "") -> str:
    """One line: title, file, scan outcome with votes and snapshot, and what happened."""
    title = _TITLES.get(outcome.status, outcome.status.upper())
    if outcome.decision is not None:
        body = outcome.decision.explanation
    elif outcome.error:
        body = outcome.error
    elif outcome.status == "queued":
        body = "the relay is not reachable now: the message is kept (encrypted) and sent once connected"
    else:
        body = ""
    if outcome.status == "confirm":
        body += " (cancelled)" if not body.endswith("?") else ""
    file = f" {name}:" if name else ""
    hint = " (ctrl+y: appeal)" if outcome.status in ("blocked", "reported") and name else ""
    return f"{title}{file} {body}{hint}".strip()


class VerdictBanner(Static):
    """Hidden until an image verdict arrives; colour by what happened."""

    def show_outcome(self, outcome: SendOutcome, name: str = "") -> None:
        from rich.markup import escape

        for cls in ("sent", "blocked", "reported", "confirm", "error", "queued"):
            self.remove_class(cls)
        self.add_class(outcome.status)
        self.update(escape(banner_text(outcome, name)))  # file names are text, not markup
        self.display = True

    def show_text(self, text: str, kind: str = "error") -> None:
        for cls in ("sent", "blocked", "reported", "confirm", "error", "queued"):
            self.remove_class(cls)
        self.add_class(kind)
        self.update(text)
        self.display = True
