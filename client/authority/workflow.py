"""Decision -> bank change -> rebuild -> sign -> publish, one progress line per step.

:class:`Workflow` owns no socket: :meth:`Workflow.apply_pending` applies recorded decisions to the bank
(each kind's ``apply`` from the inbox's table) and marks them applied in the store; :meth:`Workflow.build`
builds and signs a snapshot of the bank's current generation; the service publishes it and then calls
:meth:`Workflow.published`, which advances the published generation and queues the held decision notices,
in one transaction.

Nothing is lost when a publish fails: the decision stays recorded and applied, the bank keeps its change,
the store's bank generation stays ahead of the published one, and the service retries (rebuilding if more
decisions arrived meanwhile). A crash between a bank change and ``mark_applied`` re-applies the decision on
the next start, which is idempotent (bank imports dedupe, removals of absent hashes do nothing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.authority.items import Notice, seal_notice
from client.authority.store import AuthorityStore, Decision, Item
from client.crypto.identity import account_id_from_public_key
from scanner.authority import AuthorityKey
from scanner.bank import HashBank

__all__ = ["ApplyContext", "ApplyResult", "Built", "Workflow"]

DEFAULT_SOURCE_NAME = "authority-review"
SNAPSHOT_VALID_DAYS = 30.0


@dataclass
class ApplyContext:
    """What a kind's ``apply`` sees: the open bank, the item, its decision, the provenance source name."""

    bank: HashBank
    item: Item
    decision: Decision
    source_name: str
    now: int


@dataclass(frozen=True)
class ApplyResult:
    outcome: dict[str, Any]
    bank_changed: bool
    why: str = ""


@dataclass(frozen=True)
class Built:
    """A signed snapshot of one bank generation, ready to publish."""

    version: int
    generation: int
    data: bytes = field(repr=False)
    entries: int
    seconds: float


class Workflow:
    """Applies decisions to the bank and builds snapshots (see the module docstring)."""

    def __init__(self, store: AuthorityStore, bank_path: str | os.PathLike[str], key: AuthorityKey, *,
                 source_name: str = DEFAULT_SOURCE_NAME, min_sources: int = 1,
                 progress: Callable[[str], None] = lambda line: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.bank_path = Path(bank_path)
        self.key = key
        self.source_name = source_name
        self.min_sources = min_sources
        self.progress = progress
        self.clock = clock
        self._seed = key.seed

    # ----- decisions ---------------------------------------------------------------------------
    def apply_pending(self) -> int:
        """Apply every recorded, unapplied decision; return how many were applied."""
        from client.authority.inbox import kind_spec

        pending = self.store.unapplied()
        if not pending:
            return 0
        with HashBank(self.bank_path, create=False) as bank:
            for decision in pending:
                item = self.store.get_item(decision.item_id)
                spec = kind_spec(item.kind)
                result = ApplyResult({}, False, f"{item.kind} {decision.decision}")
                if spec is not None and spec.apply is not None:
                    ctx = ApplyContext(bank, item, decision, self.source_name, int(self.clock()))
                    result = spec.apply(ctx)
                notify = spec is not None and spec.notify_sender
                notices: list[tuple[str, str, bytes]] = []
                mode = "none"
                if notify and result.bank_changed:
                    mode = "after_publish"
                elif notify:
                    notice = self._notice(item, decision, None)
                    if notice is not None:
                        notices.append(notice)
                        mode = "queued"
                generation = self.store.mark_applied(decision.seq, outcome=result.outcome,
                                                     bank_changed=result.bank_changed, notice=mode,
                                                     why=result.why, notices=notices)
                change = ", ".join(f"{k} {v}" for k, v in result.outcome.items() if isinstance(v, int))
                self.progress(f"decision on {item.kind} {item.id} ({decision.decision}) applied"
                              + (f": bank {change}, generation {generation}" if result.bank_changed else
                                 ": no bank change"))
        return len(pending)

    def _notice(self, item: Item, decision: Decision, version: int | None) -> tuple[str, str, bytes] | None:
        sender_key = self.store.sender_key(item.id)
        if sender_key is None or account_id_from_public_key(sender_key) != item.sender:
            return None
        notice = Notice(item.ref, item.kind, decision.decision, decision.note, decision.decided_at, version)
        payload = seal_notice(notice, self._seed, sender_key)
        return os.urandom(16).hex(), item.sender, payload

    # ----- snapshots ---------------------------------------------------------------------------
    def needs_publish(self) -> bool:
        return self.store.bank_generation() > self.store.published_generation()

    def build_floor(self) -> tuple[int, int]:
        """``(bank generation, lowest version the next snapshot may carry)`` (read on the store's thread)."""
        return self.store.bank_generation(), self.store.last_snapshot_version() + 1

    def build(self, *, generation: int, min_version: int = 0) -> Built:
        """Build and sign a snapshot of the bank as it is now, numbered at least ``min_version``, through
        the authority workflow (:mod:`scanner.snapshot.workflow`: dedupe, padded calibration, signing).

        Touches no store (it may run in a worker thread); the bank is opened here.
        """
        from scanner.snapshot.workflow import SnapshotPlan, make_snapshot

        # workers=1: serve builds in a thread of an asyncio process, where forking build workers is unsafe
        plan = SnapshotPlan(min_sources=self.min_sources, min_version=min_version,
                            valid_days=SNAPSHOT_VALID_DAYS, workers=1)
        snapshot = make_snapshot(self.bank_path, self.key, plan, now=int(self.clock()))
        seconds = snapshot.sizing.seconds + snapshot.build_seconds
        return Built(snapshot.version, generation, snapshot.data, snapshot.entries, seconds)

    def record_build(self, built: Built) -> None:
        self.store.record_build(version=built.version, generation=built.generation, entries=built.entries,
                                size=len(built.data), seconds=built.seconds)
        self.progress(f"snapshot v{built.version} built and signed: {built.entries} "
                      f"hash{'' if built.entries == 1 else 'es'}, "
                      f"{len(built.data)} bytes in {built.seconds:.2f} s (generation {built.generation})")

    def published(self, built: Built, seconds: float) -> None:
        """The relay holds ``built``: advance the published generation and queue the held notices."""
        notices = []
        for decision in self.store.held_notices(built.generation):
            item = self.store.get_item(decision.item_id)
            notice = self._notice(item, decision, built.version)
            if notice is not None:
                notices.append(notice)
        self.store.record_published(version=built.version, generation=built.generation, seconds=seconds,
                                    notices=notices)
        self.progress(f"snapshot v{built.version} published in {seconds:.2f} s"
                      + (f"; {len(notices)} decision notices queued" if notices else ""))
