"""Per-key rate limits: a token bucket per API key, in this process.

Each API process limits on its own, so N processes behind a load balancer admit up to N
times a key's rate; a fleet-wide limit belongs to the gateway in front of them. What this
guards is one process's scoring thread against one runaway or hostile client.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst_s = burst_s
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_s: float | None = None, cost: float = 1.0) -> float:
        """Take ``cost`` tokens of ``key``'s bucket: 0.0 when admitted, else the seconds to
        wait before the request would be (the ``Retry-After``). ``rate_per_s`` overrides the
        default for this key; 0 or below means unlimited."""
        rate = self.rate_per_s if rate_per_s is None else rate_per_s
        if rate <= 0:
            return 0.0
        capacity = max(rate * self.burst_s, cost)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / rate


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(wait_s)))
