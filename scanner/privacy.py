"""What enumerating a snapshot costs an adversary, and the one-line privacy statement of a build.

Any table a device can test offline can be enumerated over its ``2^k`` keys: ``L * 2^k`` keyed BLAKE2b
digests in all (``research attacks recover`` does it and stitches the present patterns back into bank
hashes). An OPRF-keyed snapshot turns each of those digests into one evaluation by the authority's service.
Pure arithmetic; the digest rate is a measured figure (``docs/privacy.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scanner.oprf import MAX_BATCH

__all__ = [
    "DEFAULT_MIN_ENUMERATION_CORE_HOURS",
    "DIGESTS_PER_CORE_SECOND",
    "EnumerationCost",
    "enumeration_cost",
]

#: Offline key digests per CPU-second, measured with ``pocketscan research attacks recover`` on the
#: corpus-default snapshots (1.62e6 at k = 15, 1.73e6 at k = 19; 2-core x86-64 VM, Python 3.11, hashlib
#: BLAKE2b; 2026-11-29). Faster code (C, GPU) is faster: the core-hours bound the adversary's cost above.
DIGESTS_PER_CORE_SECOND = 1.7e6
#: Offline builds whose full enumeration costs less than this refuse without ``--allow-weak-privacy``. The
#: default (36 core-seconds) refuses degenerate parameters (unpadded small banks, short explicit keys) and
#: lets the padded default of any bank through (0.03 core-hours for a small bank): no offline snapshot of a
#: small bank is private, the build's privacy line says so; deployments set a real floor or use OPRF keys.
DEFAULT_MIN_ENUMERATION_CORE_HOURS = 0.01


@dataclass(frozen=True)
class EnumerationCost:
    """The cost of testing every key of every table.

    Attributes:
        keys: ``"offline"`` or ``"oprf"``.
        digests: ``L * 2^k`` (offline digests, or OPRF evaluations).
        core_hours: offline: digests at :data:`DIGESTS_PER_CORE_SECOND`; OPRF: ``inf`` (impossible offline).
        batches: OPRF: requests needed at :data:`~scanner.oprf.MAX_BATCH` keys per batch.
    """

    keys: str
    digests: int
    core_hours: float
    batches: int = 0

    def account_days(self, per_day: int) -> float:
        """OPRF: days of one account's (or address's) quota to evaluate every key."""
        return self.batches / per_day if per_day > 0 else math.inf

    def line(self, tables: int, bits: int) -> str:
        """The mode's privacy in one line (printed by ``snapshot build``)."""
        if self.keys == "oprf":
            return (
                f"privacy: OPRF keys: no offline enumeration (the file does not hold the OPRF key); all "
                f"{tables} x 2^{bits} = {self.digests:.3g} keys take {self.batches:.3g} service batches of "
                f"{MAX_BATCH}, rate-limited per account and address"
            )
        verdict = (
            "an adversary holding the file can recover the bank"
            if self.core_hours < 1e4
            else ("beyond casual enumeration, still offline")
        )
        return (
            f"privacy: offline keys: enumerating {tables} x 2^{bits} = {self.digests:.3g} digests costs "
            "about "
            f"{self.core_hours:.3g} core-hours ({DIGESTS_PER_CORE_SECOND:.3g} digests/s per core): {verdict}"
        )


def enumeration_cost(tables: int, bits: int, *, oprf: bool = False) -> EnumerationCost:
    """The enumeration cost of a snapshot with ``tables`` tables of ``bits``-bit keys."""
    digests = tables * (1 << bits)
    if oprf:
        return EnumerationCost("oprf", digests, math.inf, -(-digests // MAX_BATCH))
    return EnumerationCost("offline", digests, digests / DIGESTS_PER_CORE_SECOND / 3600.0)
