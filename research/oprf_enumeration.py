"""The recovery attack's key evaluator for OPRF-keyed snapshots: every key costs one service evaluation.

:class:`ServiceEvaluator` is a :data:`research.recovery.KeyEvaluator`: it sends a table's keys to the
authority's OPRF service in batches (blinded, as a device would: the service cannot tell an attack from
scanning), verifies each batch proof against the key the snapshot commits to, and digests the outputs as the
matcher does. The service's rate limit stops it with :class:`~scanner.errors.OprfError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scanner.oprf import MAX_BATCH, OprfDigester, blind_batch, lsh_input
from scanner.oprf_client import OprfServiceClient
from scanner.snapshot.format import Header

__all__ = ["ServiceEvaluator"]


class ServiceEvaluator:
    """Evaluates keys through ``authority oprf`` at ``url`` (counts what it paid for in ``evaluated``)."""

    def __init__(
        self, url: str, header: Header, *, batch: int = MAX_BATCH, profile: str | None = None
    ) -> None:
        seed = None
        if profile is not None:
            from client.authority.oprf_commands import account_signing_seed

            seed = account_signing_seed(profile)
        self._client = OprfServiceClient(url, signing_seed=seed)
        self._header = header
        self._digester = OprfDigester(header.salt, header.tables)
        self._batch = max(1, min(batch, MAX_BATCH))
        self.evaluated = 0

    def __call__(self, table: int, keys: np.ndarray) -> bytes:
        out: list[bytes] = []
        rows = np.ascontiguousarray(keys).view(f"V{keys.shape[1]}").ravel().tolist()
        for start in range(0, len(rows), self._batch):
            inputs = [lsh_input(table, bytes(r)) for r in rows[start : start + self._batch]]
            blinded = blind_batch(inputs)
            answer = self._client.evaluate(blinded.request(), len(inputs))
            outputs = blinded.finalize(answer, self._header.oprf_public_key)
            out.extend(self._digester.digest_output(table, o) for o in outputs)
            self.evaluated += len(inputs)
        return b"".join(out)

    def limits(self) -> dict[str, Any]:
        """The limits the service announced."""
        return dict(self._client.limits)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
