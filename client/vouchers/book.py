"""The authority's voucher book: per account and period, nothing opens below t, everything real opens at t.

Pure (no sockets, files or clocks): ``authority serve`` feeds it vouchers whose outer seal it has
removed, and persists what it returns; the book can be rebuilt by feeding the stored vouchers again
in their order of arrival (it is deterministic).

Grouping. Vouchers are kept per ``(account, period, threshold)``. Shares of different groups are never
combined, so two periods' vouchers cannot open each other (they lie on unrelated polynomials anyway).

Opening. While a group is closed, each new voucher triggers a search for ``t`` shares whose
interpolation at 0 matches the group's key commitment (a constant-time compare):

1. every ``t``-subset that contains the new voucher, while there are at most
   :data:`SUBSET_SEARCH_LIMIT` of them (subsets without it were tried when earlier vouchers came);
2. beyond that, Berlekamp-Welch decoding over all held shares, which succeeds when the real shares
   are at least ``(n + t) / 2`` of the ``n`` held (synthetic vouchers are errors to it). Each attempt
   solves an ``n x n`` system, so attempts are spaced out: the next one waits until the group holds
   1/8 more vouchers, and groups above :data:`BERLEKAMP_WELCH_LIMIT` held vouchers are not decoded.

At ``t`` real shares without synthetic ones among the held vouchers, step 1 opens the group at once.
Once the polynomial is known, every held voucher (and every later one) is checked: a share on the
polynomial whose payload decrypts is *opened*; anything else (synthetic, forged, damaged) is *dropped*.

Refused outright (:class:`VoucherRefused`): a voucher id seen before (a replay), a share index already
held in the group (a replayed or duplicated share), a commitment that is not the group's, and a voucher
whose account is not the authenticated sender.
"""

from __future__ import annotations

import hmac
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from client.errors import ClientError
from client.vouchers.shamir import Share, ShareError, combine, decode_with_errors, evaluate, interpolate_at
from client.vouchers.voucher import Voucher, VoucherError, key_commitment, open_payload

__all__ = [
    "BERLEKAMP_WELCH_LIMIT",
    "SUBSET_SEARCH_LIMIT",
    "AddOutcome",
    "GroupKey",
    "GroupStatus",
    "OpenedVoucher",
    "VoucherBook",
    "VoucherRefused",
]

SUBSET_SEARCH_LIMIT = 20_000
"""Most t-subsets tried for one arriving voucher before falling back to error-correcting decoding."""
BERLEKAMP_WELCH_LIMIT = 200
"""Most held vouchers a group decodes with Berlekamp-Welch (a dense linear system of that size)."""


class VoucherRefused(ClientError):
    """A voucher the book will not hold: replayed, a repeated share index, or an inconsistent group."""


GroupKey = tuple[str, int, int]
"""(account, period, threshold)."""


@dataclass(frozen=True)
class OpenedVoucher:
    """A real voucher whose payload the authority could decrypt."""

    voucher_id: str
    account: str
    period: int
    body: bytes


@dataclass(frozen=True)
class AddOutcome:
    """What adding one voucher did: held (group closed), opened, or dropped (group open, voucher not real)."""

    status: Literal["held", "opened", "dropped"]
    group: GroupKey
    opened: tuple[OpenedVoucher, ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupStatus:
    """One account's vouchers in one key period: a line of ``authority vouchers`` and of the console."""

    account: str
    period: int
    threshold: int
    vouchers: int
    """Vouchers held (real and synthetic alike: the authority cannot tell them apart below t)."""
    opened: bool
    opened_vouchers: int
    dropped_vouchers: int

    def to_json(self) -> dict[str, Any]:
        """The ``authority vouchers`` line (exact contract)."""
        return {"account": self.account, "period": self.period, "vouchers": self.vouchers,
                "threshold": self.threshold, "opened": self.opened}

    @property
    def progress(self) -> str:
        """``"k of t"`` (``"opened"`` once the period's key is known)."""
        return "opened" if self.opened else f"{self.vouchers} of {self.threshold}"


@dataclass
class _Group:
    account: str
    period: int
    threshold: int
    commitment: bytes
    held: list[Voucher] = field(default_factory=list)
    xs: set[int] = field(default_factory=set)
    curve: list[Share] | None = None
    """t points of the reconstructed polynomial (None while closed)."""
    opened: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    received: int = 0
    next_decode: int = 0
    """Held count at which the next Berlekamp-Welch attempt runs."""

    @property
    def secret(self) -> int | None:
        return None if self.curve is None else interpolate_at(self.curve, 0)


class VoucherBook:
    """Every account's vouchers by period (see the module docstring for the rules)."""

    def __init__(self, *, subset_limit: int = SUBSET_SEARCH_LIMIT, decode: bool = True) -> None:
        """``decode=False`` holds and counts without ever opening (research on what is seen below t)."""
        self._groups: dict[GroupKey, _Group] = {}
        self._ids: set[bytes] = set()
        self.subset_limit = subset_limit
        self.decode = decode

    # ----- queries -----------------------------------------------------------------------------
    def status(self) -> list[GroupStatus]:
        """One status per (account, period, threshold), sorted by account then period."""
        return [GroupStatus(g.account, g.period, g.threshold, g.received, g.curve is not None,
                            len(g.opened), len(g.dropped))
                for _, g in sorted(self._groups.items())]

    def is_open(self, key: GroupKey) -> bool:
        g = self._groups.get(key)
        return g is not None and g.curve is not None

    # ----- adding ------------------------------------------------------------------------------
    def restore_open(self, voucher: Voucher, curve: list[Share]) -> None:
        """Open ``voucher``'s group with a polynomial found earlier (a persisted book), after checking it."""
        key: GroupKey = (voucher.account, voucher.period, voucher.threshold)
        group = self._groups.setdefault(key, _Group(*key, voucher.commitment))
        if len(curve) != group.threshold or not self._authentic(group, interpolate_at(curve, 0)):
            raise VoucherRefused("the stored polynomial does not match this group's key commitment")
        group.curve = list(curve)

    def curve(self, key: GroupKey) -> list[Share] | None:
        """The reconstructed polynomial of an open group (t points), to persist; None while closed."""
        g = self._groups.get(key)
        return None if g is None or g.curve is None else list(g.curve)

    def add(self, voucher: Voucher, *, sender: str | None = None, attempt: bool = True) -> AddOutcome:
        """Hold ``voucher``; open its group if it makes ``t`` real shares; raise :class:`VoucherRefused`.

        ``attempt=False`` (reloading vouchers already processed) registers it without decoding, and
        without opening it when its group is already open.
        """
        if sender is not None and not hmac.compare_digest(sender.encode(), voucher.account.encode()):
            raise VoucherRefused("voucher refused: its account is not the sender's")
        if voucher.voucher_id in self._ids:
            raise VoucherRefused("voucher refused: this voucher id was seen before (a replay)")
        key: GroupKey = (voucher.account, voucher.period, voucher.threshold)
        group = self._groups.get(key)
        if group is None:
            group = _Group(voucher.account, voucher.period, voucher.threshold, voucher.commitment)
        elif not hmac.compare_digest(group.commitment, voucher.commitment):
            raise VoucherRefused("voucher refused: its key commitment is not its period's")
        if voucher.x in group.xs:
            raise VoucherRefused("voucher refused: its share index was already used this period (a replay)")
        self._groups[key] = group
        self._ids.add(voucher.voucher_id)
        group.xs.add(voucher.x)
        group.received += 1
        if not attempt:
            if group.curve is None:
                group.held.append(voucher)
            return AddOutcome("held", key)
        if group.curve is not None:
            opened, dropped = self._sort_out(group, [voucher])
            return AddOutcome("opened" if opened else "dropped", key, opened, dropped)
        group.held.append(voucher)
        curve = self._reconstruct(group, voucher)
        if curve is None:
            return AddOutcome("held", key)
        group.curve = curve
        held, group.held = group.held, []
        opened, dropped = self._sort_out(group, held)
        return AddOutcome("opened", key, opened, dropped)

    def add_all(self, vouchers: Iterable[Voucher]) -> list[AddOutcome | VoucherRefused]:
        """Add several vouchers in order; a refused one costs only itself."""
        out: list[AddOutcome | VoucherRefused] = []
        for v in vouchers:
            try:
                out.append(self.add(v))
            except VoucherRefused as exc:
                out.append(exc)
        return out

    # ----- internals ---------------------------------------------------------------------------
    @staticmethod
    def _authentic(group: _Group, secret: int) -> bool:
        expected = key_commitment(group.account, group.period, group.threshold, secret)
        return hmac.compare_digest(expected, group.commitment)

    def _reconstruct(self, group: _Group, newest: Voucher) -> list[Share] | None:
        t = group.threshold
        if not self.decode or len(group.held) < t:
            return None
        others = [v.share for v in group.held if v is not newest]
        if math.comb(len(others), t - 1) <= self.subset_limit:
            for subset in itertools.combinations(others, t - 1):
                points = [*subset, newest.share]
                try:
                    secret = combine(points, t)
                except ShareError:
                    continue
                if self._authentic(group, secret):
                    return points
            return None
        n = len(group.held)
        if n > BERLEKAMP_WELCH_LIMIT or n < group.next_decode:
            return None
        group.next_decode = n + max(1, n // 8)
        coefficients = decode_with_errors([v.share for v in group.held], t)
        if coefficients is None or not self._authentic(group, coefficients[0]):
            return None
        xs = [v.x for v in group.held if evaluate(coefficients, v.x) == v.y][:t]
        return [Share(x, evaluate(coefficients, x)) for x in xs]

    @staticmethod
    def _sort_out(group: _Group,
                  vouchers: list[Voucher]) -> tuple[tuple[OpenedVoucher, ...], tuple[str, ...]]:
        assert group.curve is not None
        secret = interpolate_at(group.curve, 0)
        opened: list[OpenedVoucher] = []
        dropped: list[str] = []
        for v in vouchers:
            on_curve = interpolate_at(group.curve, v.x) == v.y
            body: bytes | None = None
            if on_curve:
                try:
                    body = open_payload(v, secret)
                except VoucherError:
                    body = None
            if body is None:
                dropped.append(v.id_hex)
                group.dropped.append(v.id_hex)
            else:
                opened.append(OpenedVoucher(v.id_hex, v.account, v.period, body))
                group.opened.append(v.id_hex)
        return tuple(opened), tuple(dropped)
