"""Defaults of the snapshot calibration and privacy floor that the command line shows in its help.

They live apart from :mod:`scanner.calibration` and :mod:`scanner.privacy` (which need numpy) so that building
``pocketscan``'s parser stays cheap; :mod:`scanner.calibration` and :mod:`scanner.privacy` re-export them.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_LOOKUPS",
    "DEFAULT_MIN_ENUMERATION_CORE_HOURS",
    "DEFAULT_MIN_KEY_BITS",
    "DEFAULT_RECALL_FLOOR",
]

#: Default cap on Bloom lookups per hash variant (L tables times probes per table): bounds matching time
#: (about 1.3 us per lookup: 384 lookups and 8 dihedral variants cost about 4 ms per image).
DEFAULT_MAX_LOOKUPS = 384

#: Shortest LSH key the search considers (privacy: see docs/snapshot-format.md, "What the file reveals").
DEFAULT_MIN_KEY_BITS = 4

#: Predicted recall the snapshot must keep at the target distance when the budgets allow it.
DEFAULT_RECALL_FLOOR = 0.999

#: Offline builds whose full enumeration costs less than this refuse without ``--allow-weak-privacy``. The
#: default (36 core-seconds) refuses degenerate parameters (unpadded small banks, short explicit keys) and
#: lets the padded default of any bank through (0.03 core-hours for a small bank): no offline snapshot of a
#: small bank is private, the build's privacy line says so; deployments set a real floor or use OPRF keys.
DEFAULT_MIN_ENUMERATION_CORE_HOURS = 0.01
