"""Defaults of the snapshot calibration that the command line shows in its help.

They live apart from :mod:`scanner.calibration` (which needs numpy and scipy) so that building
``pocketscan``'s parser stays cheap; :mod:`scanner.calibration` re-exports them.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_LOOKUPS", "DEFAULT_MIN_KEY_BITS", "DEFAULT_RECALL_FLOOR"]

#: Default cap on Bloom lookups per hash variant (L tables times probes per table): bounds matching time
#: (about 1.3 us per lookup: 384 lookups and 8 dihedral variants cost about 4 ms per image).
DEFAULT_MAX_LOOKUPS = 384

#: Shortest LSH key the search considers (privacy: see docs/snapshot-format.md, "What the file reveals").
DEFAULT_MIN_KEY_BITS = 4

#: Predicted recall the snapshot must keep at the target distance when the budgets allow it.
DEFAULT_RECALL_FLOOR = 0.999
