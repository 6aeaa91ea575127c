"""The decision ledger: which transaction_ids already have an acknowledged decision.

Replays after a crash re-deliver the offsets that were not committed. Their features are
idempotent (the feature store ignores a transaction it has applied), and the ledger stops a
second *decision*: an id is marked only after its decision was acknowledged by the broker
and before the offsets are committed. The one remaining window - a crash between the
acknowledgement and the mark, a few hundred microseconds - can repeat a decision, which
downstream consumers collapse by transaction_id.

One key per transaction (``<prefix>:decided:<transaction_id>``, expiring after the
ledger's TTL, so Redis forgets them one at a time instead of deleting a large set at
once). A batch is checked with one ``MGET`` and marked with one script call: as 500
pipelined ``SET ... EX`` commands, the marking cost the scorer ~6 us of client CPU per
transaction (redis-py packs and parses every command); the script takes the keys as one
command. On a Redis Cluster the batch is split per node: one script per node with the
keys in ARGV (:func:`features.redis_nodes.script_per_node`), the check one ``MGET`` per
slot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import redis

from features.errors import FeatureStoreUnavailable
from features.redis_nodes import is_cluster, mget, script_per_node

MARK_SCRIPT = """#!lua flags=allow-cross-slot-keys
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
return #KEYS
"""

MARK_NODE_SCRIPT = """#!lua flags=allow-cross-slot-keys
for i = 2, #ARGV do
  redis.call('SET', ARGV[i], '1', 'EX', ARGV[1])
end
return #ARGV - 1
"""
"""The mark on one node of a Redis Cluster: the keys in ARGV after the TTL."""


class DecisionLedger:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = f"{prefix}:decided:"
        self._ttl_s = ttl_s
        self._mark = client.register_script(MARK_SCRIPT)

    def undecided(self, transaction_ids: Sequence[str]) -> np.ndarray:
        """Mask of ids with no decision yet (also drops repeats inside the batch)."""
        if not transaction_ids:
            return np.zeros(0, dtype=bool)
        try:
            found = mget(self._client, [self._prefix + t for t in transaction_ids])
        except (redis.RedisError, OSError) as exc:
            raise FeatureStoreUnavailable("decision ledger", str(exc)) from exc
        return np.fromiter((v is None for v in found), dtype=bool, count=len(found)) & first_seen(
            transaction_ids
        )

    def mark_decided(self, transaction_ids: Sequence[str]) -> None:
        """Remember the ids for the ledger's TTL (atomically: all of them or none; on a
        cluster, all of a node's)."""
        if not transaction_ids:
            return
        keys = [self._prefix + t for t in transaction_ids]
        try:
            if is_cluster(self._client):  # all of a node's ids or none of them
                ttl = self._ttl_s
                script_per_node(self._client, MARK_NODE_SCRIPT, keys, lambda part: [ttl, *part])
            else:
                self._mark(keys=keys, args=[self._ttl_s])
        except (redis.RedisError, OSError) as exc:
            raise FeatureStoreUnavailable("decision ledger", str(exc)) from exc


def first_seen(transaction_ids: Sequence[str]) -> np.ndarray:
    """Mask of the first occurrence of each id in the batch (a repeat inside it is skipped)."""
    mask = np.ones(len(transaction_ids), dtype=bool)
    seen: set[str] = set()
    for i, tid in enumerate(transaction_ids):
        if tid in seen:
            mask[i] = False
        seen.add(tid)
    return mask
