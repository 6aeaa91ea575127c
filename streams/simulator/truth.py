"""Ground truth of live transactions, kept beside the stream for the demo's oracle analyst.

One Redis string per transaction under ``{prefix}:truth:{transaction_id}`` holding
``"{is_fraud}:{scenario}"``, with a TTL so a long demo does not grow Redis without bound.
The simulator writes a batch *before* producing it, so whoever sees a transaction on the
topic can already read its truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

DEFAULT_TTL_S = 7 * 86_400
_READ_CHUNK = 1_000


class GroundTruthStore:
    """``write_batch`` / ``read_batch`` of (is_fraud, scenario) by transaction_id."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._client = client
        self._prefix = f"{prefix}:truth:"
        self._ttl_s = int(ttl_s)

    def key(self, transaction_id: str) -> str:
        return self._prefix + transaction_id

    def write_batch(self, rows: Iterable[tuple[str, int, int]]) -> int:
        """Store ``(transaction_id, is_fraud, scenario)`` rows in one pipeline; return count."""
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for transaction_id, is_fraud, scenario in rows:
            pipe.execute_command(
                "SET", self._prefix + transaction_id, f"{is_fraud}:{scenario}", "EX", self._ttl_s
            )
            count += 1
        if count:
            pipe.execute()
        return count

    def read_batch(self, transaction_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``{transaction_id: (is_fraud, scenario)}`` for the ids that have a truth."""
        out: dict[str, tuple[int, int]] = {}
        for start in range(0, len(transaction_ids), _READ_CHUNK):
            chunk = list(transaction_ids[start : start + _READ_CHUNK])
            keys = [self._prefix + t for t in chunk]
            # a Redis Cluster (RedisCluster) reads keys of many slots one slot at a time
            read = getattr(self._client, "mget_nonatomic", self._client.mget)
            values = read(keys)
            for transaction_id, value in zip(chunk, values, strict=True):
                if value is not None:
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    is_fraud, _, scenario = text.partition(":")
                    out[transaction_id] = (int(is_fraud), int(scenario))
        return out
