"""The decision ledger: which transaction_ids already have an acknowledged decision.

Replays after a crash re-deliver the offsets that were not committed. Their features are
idempotent (the feature store ignores a transaction it has applied), and the ledger stops a
second *decision*: an id is marked only after its decision was acknowledged by the broker
and before the offsets are committed. The one remaining window - a crash between the
acknowledgement and the mark, a few hundred microseconds - can repeat a decision, which
downstream consumers collapse by transaction_id.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import redis

from features.errors import FeatureStoreUnavailable


class DecisionLedger:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = f"{prefix}:decided:"
        self._ttl_s = ttl_s

    def undecided(self, transaction_ids: Sequence[str]) -> np.ndarray:
        """Mask of ids with no decision yet (also drops repeats inside the batch)."""
        if not transaction_ids:
            return np.zeros(0, dtype=bool)
        try:
            found = self._client.mget([self._prefix + t for t in transaction_ids])
        except (redis.RedisError, OSError) as exc:
            raise FeatureStoreUnavailable("decision ledger", str(exc)) from exc
        mask = np.fromiter((v is None for v in found), dtype=bool, count=len(found))
        seen: set[str] = set()
        for i, tid in enumerate(transaction_ids):
            if tid in seen:
                mask[i] = False
            seen.add(tid)
        return mask

    def mark_decided(self, transaction_ids: Sequence[str]) -> None:
        if not transaction_ids:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for tid in transaction_ids:
                pipe.set(self._prefix + tid, b"1", ex=self._ttl_s)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise FeatureStoreUnavailable("decision ledger", str(exc)) from exc
