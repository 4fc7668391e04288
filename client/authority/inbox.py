"""The authority's inbox: open each sealed envelope, check who sent it, validate it by kind and store it.

Two small tables make it extensible (issue 14's threshold vouchers plug in here without touching the serve
loop):

* :data:`ENVELOPES` maps an envelope's 4-byte magic to an *opener* that decrypts it with the authority's key
  and returns an :class:`~client.authority.items.OpenedItem` (``PSRP`` reports, ``PSA1`` signed items).
  :func:`register_envelope` adds one.
* :data:`KINDS` maps an item kind to a :class:`KindSpec`: how to validate its body (and derive its
  per-sender reference), the status it enters the store with (``waiting`` for the queue, ``held`` for items
  that must not reach reviewers yet), an optional hook run after it is stored, whether its sender gets a
  decision notice, and what accepting or rejecting it does to the bank (``apply``). :func:`register_kind`
  adds one.

Every envelope costs one envelope: one that does not open, is malformed, is of an unknown kind, or whose
signer is not the relay-authenticated sender (a forgery) is refused and recorded (``refused`` table and the
audit log) and never reaches the queue.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from client.authority.items import ITEM_MAGIC, ItemError, OpenedItem, open_item
from client.authority.store import AuthorityStore
from client.net import NetError

if TYPE_CHECKING:
    from client.authority.workflow import ApplyContext, ApplyResult

__all__ = [
    "ENVELOPES",
    "KINDS",
    "BlobFetcher",
    "Inbox",
    "KindSpec",
    "Prepared",
    "kind_spec",
    "register_envelope",
    "register_kind",
]

Opener = Callable[[bytes, bytes], OpenedItem]
"""``(envelope, authority seed) -> OpenedItem``; raises :class:`ItemError` (or the format's own error)."""
BlobFetcher = Callable[[str], Awaitable[bytes]]
"""Downloads a relay blob by id (the service passes its network's)."""


@dataclass(frozen=True)
class Prepared:
    """A validated item body, ready to store."""

    ref: str
    """The sender's own id of the item (dedupes redeliveries and resends)."""
    body: dict[str, Any]
    """What the store keeps and the queue prints (no secrets: attachment keys are removed)."""
    attachment: bytes | None = None
    """Plaintext bytes to keep encrypted in the store (an appeal's image, with explicit consent)."""


@dataclass(frozen=True)
class KindSpec:
    """How the authority handles one item kind (see the module docstring)."""

    kind: str
    prepare: Callable[[OpenedItem, BlobFetcher | None], Awaitable[Prepared]]
    apply: Callable[[ApplyContext], ApplyResult] | None = None
    """What a decision does (bank changes); None: recorded only."""
    notify_sender: bool = False
    """Send the decision back to the sender as a sealed notice."""
    initial_status: str = "waiting"
    after_store: Callable[[AuthorityStore, str], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


ENVELOPES: dict[bytes, tuple[str, Opener]] = {}
KINDS: dict[str, KindSpec] = {}
_builtins_loaded = False


def register_envelope(magic: bytes, name: str, opener: Opener) -> None:
    """Route envelopes starting with ``magic`` (4 bytes) to ``opener``."""
    if len(magic) != 4:
        raise ValueError("an envelope magic is 4 bytes")
    ENVELOPES[magic] = (name, opener)


def register_kind(spec: KindSpec) -> None:
    """Add (or replace) the handling of an item kind."""
    KINDS[spec.kind] = spec


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module("client.authority.kinds")
        importlib.import_module("client.authority.vouchers")  # threshold vouchers (issue 14)


def kind_spec(kind: str) -> KindSpec | None:
    """The registered handling of ``kind`` (built-ins load on first use)."""
    _load_builtins()
    return KINDS.get(kind)


def _open_signed(envelope: bytes, seed: bytes) -> OpenedItem:
    return open_item(envelope, seed)


register_envelope(ITEM_MAGIC, "item", _open_signed)


class Refused(Exception):
    """An envelope the inbox will not store (the message says why)."""


class Inbox:
    """Opens, checks and stores what arrives in the authority's mailbox."""

    def __init__(self, store: AuthorityStore, authority_seed: bytes, *,
                 fetch_blob: BlobFetcher | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.store = store
        self._seed = authority_seed
        self.fetch_blob = fetch_blob
        self.progress = progress

    async def receive(self, mid: str, sender: str, ts: float, envelope: bytes) -> str | None:
        """Handle one envelope durably; return the new queue id, or None (refused or duplicate)."""
        _load_builtins()
        if self.store.seen_mid(mid):
            return None
        try:
            opened = self._open(sender, envelope)
            spec = KINDS.get(opened.kind)
            if spec is None:
                raise Refused(f"unknown item kind {opened.kind!r}")
            try:
                prepared = await spec.prepare(opened, self.fetch_blob)
            except ItemError as exc:
                raise Refused(f"malformed {opened.kind}: {exc}") from None
            except NetError:
                raise  # the relay failed us (e.g. an attachment download): not acknowledged, redelivered
            except Exception as exc:  # a hostile body must cost one envelope, never the inbox
                raise Refused(f"malformed {opened.kind}: {type(exc).__name__}") from None
        except Refused as exc:
            self.store.refuse(relay_mid=mid, sender=sender, size=len(envelope), reason=str(exc),
                              received_at=self.store.clock())
            self.progress(f"refused an envelope from {sender[:8]}: {exc}")
            return None
        attachment = None
        if prepared.attachment is not None:
            from client.authority.kinds import seal_at_rest

            attachment = seal_at_rest(prepared.attachment, self._seed)
        item_id = self.store.add_item(kind=opened.kind, sender=opened.sender,
                                      sender_key=opened.sender_key or None, relay_mid=mid,
                                      ref=prepared.ref, body=prepared.body,
                                      received_at=self.store.clock(), status=spec.initial_status,
                                      attachment=attachment)
        if item_id is not None:
            if spec.after_store is not None:
                spec.after_store(self.store, item_id)
            self.progress(f"received {opened.kind} {item_id} from {opened.sender[:8]}")
        return item_id

    def _open(self, sender: str, envelope: bytes) -> OpenedItem:
        entry = ENVELOPES.get(bytes(envelope[:4]))
        if entry is None:
            raise Refused("not a pocketscan authority envelope")
        name, opener = entry
        try:
            opened = opener(envelope, self._seed)
        except ItemError as exc:
            raise Refused(f"{name} does not open: {exc}") from None
        except Exception as exc:  # an opener's own error type (e.g. ReportError): refused, never a crash
            raise Refused(f"{name} does not open: {exc}") from None
        if opened.sender != sender:
            raise Refused(f"forged {name}: it names {opened.sender[:8]} but {sender[:8]} sent it")
        return opened
