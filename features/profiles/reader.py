"""Direct reader of terminal-risk profiles from Feast's Redis layout (the scorer's hot path).

One pipelined round trip of raw ``HMGET`` commands per batch, replies parsed with numpy;
with a :class:`~features.profiles.cache.ProfileCache`, only for the terminals it lacks,
after a read of the profiles' generation token (ADR 0014).
Semantics shared with the Feast-SDK reader (:func:`finalize_profiles`):

* no row (new terminal, or Redis key expired by ``key_ttl_seconds``) -> defaults;
* row older than the feature view's TTL at the as-of time -> defaults (Feast's own TTL
  meaning for a feature value; Feast's online read does not apply it, so both readers do);
* ``terminal_days_since_fraud`` is aged: ``min(365, stored + max(0, as_of - row_ts) / 1 day)``,
  so a profile written at ``row_ts`` serves the exact value at a later ``as_of``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import repeat
from typing import Any

import numpy as np
import redis

from features.profiles.cache import ProfileCache
from features.profiles.errors import ProfileLayoutError, ProfileStoreUnavailable
from features.profiles.layout import (
    FLOAT_TAG,
    TIMESTAMP_TAG,
    VALUE_BYTES,
    FeastLayout,
    decode_timestamp,
    decode_value,
    encode_float,
    encode_timestamp,
)
from features.profiles.names import (
    DAYS_SINCE_COLUMN,
    DAYS_SINCE_NONE,
    TERMINAL_RISK_DEFAULTS,
    TERMINAL_RISK_TTL,
)
from features.profiles.times import DAY_US, TimesLike, to_utc_us
from features.redis_nodes import group_by_node, is_cluster, is_redirect

_FLOAT_RECORD = np.dtype([("tag", "u1"), ("value", "<f4")])
_DEFAULTS = np.asarray(TERMINAL_RISK_DEFAULTS, dtype=np.float32)
_TS_BYTES = 6  # 0x08 + 5-byte varint: every second between 2004 and 2514


def finalize_profiles(
    values: np.ndarray, row_seconds: np.ndarray, as_of_us: np.ndarray, ttl: timedelta
) -> np.ndarray:
    """Served matrix (n, 15) float32 from stored values (NaN = missing value) and row
    timestamps (seconds, -1 = no row), applying TTL, defaults and ``days_since`` ageing."""
    n = len(row_seconds)
    row_us = row_seconds.astype(np.int64) * 1_000_000
    ttl_us = int(ttl / timedelta(microseconds=1))
    age_us = as_of_us - row_us
    expired = (row_seconds < 0) | (age_us > ttl_us)
    out = np.where(np.isnan(values), _DEFAULTS, values).astype(np.float32)
    stored_days = out[:, DAYS_SINCE_COLUMN].astype(np.float64)
    aged = np.minimum(stored_days + np.maximum(age_us, 0) / DAY_US, DAYS_SINCE_NONE)
    out[:, DAYS_SINCE_COLUMN] = aged.astype(np.float32)
    out[expired] = _DEFAULTS
    return out.reshape(n, len(_DEFAULTS))


class FeastRedisProfileReader:
    """``read_batch(terminal_ids, as_of) -> (n, 15) float32`` straight from Feast's layout."""

    def __init__(
        self,
        redis_client: redis.Redis,
        layout: FeastLayout,
        *,
        ttl: timedelta = TERMINAL_RISK_TTL,
        cache: ProfileCache | None = None,
    ) -> None:
        self._client = redis_client
        self.layout = layout
        self.ttl = ttl
        self.cache = cache
        key = layout.generation_key
        self._generation_command = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
        fields = [*layout.feature_fields, layout.ts_field]
        self._n_fields = len(fields)
        self._n_features = len(layout.features)
        self._command_head = f"*{2 + len(fields)}\r\n$5\r\nHMGET\r\n".encode()
        self._command_tail = b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
        self._zero_values = [encode_float(0.0)] * self._n_features
        self._zero_ts = encode_timestamp(1 << 30)  # any 5-byte varint keeps the fast shape

    def read_batch(self, terminal_ids: Sequence[str], as_of: TimesLike | np.ndarray) -> np.ndarray:
        return self.start_batch(terminal_ids, as_of)()

    def start_batch(
        self, terminal_ids: Sequence[str], as_of: TimesLike | np.ndarray
    ) -> Callable[[], np.ndarray]:
        """Send the batch's reads now; the returned function waits for the replies and
        returns the served rows. The feature store calls it before planning its own batch,
        so Redis answers this while the client plans (one round trip off the hot path)."""
        as_of_us = np.asarray(as_of if _is_us_array(as_of) else to_utc_us(as_of))
        receive = self._start_raw(terminal_ids)

        def finish() -> np.ndarray:
            values, row_seconds = receive()
            return finalize_profiles(values, row_seconds, as_of_us, self.ttl)

        return finish

    def read_raw(self, terminal_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored values (n, 15) float64 (NaN = missing) and row seconds (-1 = no row)."""
        return self._start_raw(terminal_ids)()

    def _start_raw(
        self, terminal_ids: Sequence[str]
    ) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        if len(terminal_ids) == 0:
            empty = self._empty()
            return lambda: empty
        if self.cache is not None:
            return self._start_cached(terminal_ids, self.cache)
        receive = self._send_hmgets(self.layout.entity_keys(terminal_ids))
        return lambda: self._parse(receive()[1])

    def _start_cached(
        self, terminal_ids: Sequence[str], cache: ProfileCache
    ) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """Read only the terminals not cached, with the generation ahead of them; a new
        generation empties the cache and the batch's cached terminals are read again."""
        hit, hit_values, hit_seconds = cache.lookup(terminal_ids)
        flags = zip(terminal_ids, hit.tolist(), strict=True)
        missing = list(dict.fromkeys(t for t, cached in flags if not cached))
        receive = self._send_hmgets(self.layout.entity_keys(missing), generation=True)

        def parse() -> tuple[np.ndarray, np.ndarray]:
            generation, replies = receive()
            if cache.observe(generation) and len(hit_seconds):  # the hits are of before
                distinct = list(dict.fromkeys(terminal_ids))
                fresh = self._parse(self._send_hmgets(self.layout.entity_keys(distinct))()[1])
                cache.store(distinct, *fresh)
                return _spread(terminal_ids, distinct, *fresh)
            if not missing:
                return hit_values.astype(np.float64), hit_seconds
            read = self._parse(replies)
            cache.store(missing, *read)
            if len(missing) == len(terminal_ids):
                return read
            values, seconds = _spread(terminal_ids, missing, *read)
            values[hit], seconds[hit] = hit_values, hit_seconds
            return values, seconds

        return parse

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, self._n_features)), np.zeros(0, dtype=np.int64)

    def _parse(self, replies: list[list[bytes | None]]) -> tuple[np.ndarray, np.ndarray]:
        parsed = self._parse_fast(replies)
        return parsed if parsed is not None else self._parse_slow(replies)

    def _send_hmgets(
        self, keys: list[bytes], *, generation: bool = False
    ) -> Callable[[], tuple[object, list[list[bytes | None]]]]:
        """Pipeline one HMGET per key on a connection of its own (of each node, on a Redis
        Cluster), after a read of the profiles' generation when asked; the returned
        function reads the replies and gives the connections back (call it exactly once)."""
        if not is_cluster(self._client):
            return self._send_to(self._client, keys, generation)
        cluster: Any = self._client
        token: object = None
        if generation:  # before the rows, in its own round trip: the nodes are not ordered
            try:
                token = cluster.get(self.layout.generation_key)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise ProfileStoreUnavailable("read_batch", str(exc)) from exc
        groups = group_by_node(cluster, keys)
        sent = [
            (idx, self._send_to(cluster.get_redis_connection(node), [keys[i] for i in idx]))
            for node, idx in groups
        ]

        def receive() -> tuple[object, list[list[bytes | None]]]:
            out: list[list[bytes | None]] = [[] for _ in keys]
            moved: BaseException | None = None
            for idx, read in sent:
                try:
                    for i, reply in zip(idx, read()[1], strict=True):
                        out[i] = reply
                except ProfileLayoutError as exc:
                    if exc.__cause__ is None or not is_redirect(exc.__cause__):
                        raise
                    moved = exc
            if moved is not None:  # a slot moved: read again, one key at a time
                return token, self._read_moved(cluster, keys)
            return token, out

        return receive

    def _read_moved(self, cluster: Any, keys: list[bytes]) -> list[list[bytes | None]]:
        """The batch read through redis-py's cluster routing (it follows MOVED / ASK)."""
        fields = [*self.layout.feature_fields, self.layout.ts_field]
        try:
            pipe = cluster.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, fields)
            return [list(reply) for reply in pipe.execute()]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ProfileStoreUnavailable("read_batch", str(exc)) from exc

    def _send_to(
        self, client: redis.Redis, keys: list[bytes], generation: bool = False
    ) -> Callable[[], tuple[object, list[list[bytes | None]]]]:
        head, tail = self._command_head, self._command_tail
        lead = self._generation_command if generation else b""
        payload = lead + b"".join([head + b"$%d\r\n" % len(k) + k + b"\r\n" + tail for k in keys])
        pool = client.connection_pool
        try:
            connection = pool.get_connection("HMGET")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ProfileStoreUnavailable("read_batch", str(exc)) from exc
        try:
            connection.send_packed_command([payload], check_health=False)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            connection.disconnect()
            pool.release(connection)
            raise ProfileStoreUnavailable("read_batch", str(exc)) from exc

        def receive() -> tuple[object, list[list[bytes | None]]]:
            try:
                token = connection.read_response() if generation else None
                return token, [connection.read_response() for _ in keys]
            except redis.ResponseError as exc:
                connection.disconnect()
                raise ProfileLayoutError(f"profile key is not a Feast hash: {exc}") from exc
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                connection.disconnect()
                raise ProfileStoreUnavailable("read_batch", str(exc)) from exc
            finally:
                pool.release(connection)

        return receive

    def _parse_fast(
        self, replies: list[list[bytes | None]]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Vectorised decoding when every present row is 15 float32 values + a 6-byte ts."""
        k = self._n_features
        zero_values, zero_ts = self._zero_values, self._zero_ts
        present = np.fromiter((r[k] is not None for r in replies), dtype=bool, count=len(replies))
        try:
            blob = b"".join(
                [v for r in replies for v in (r[:k] if r[k] is not None else zero_values)]  # type: ignore[misc]
            )
            ts_blob = b"".join([r[k] or zero_ts for r in replies])
        except TypeError:  # a present row lacks a value: slow path
            return None
        n = len(replies)
        if len(blob) != n * k * VALUE_BYTES or len(ts_blob) != n * _TS_BYTES:
            return None
        records = np.frombuffer(blob, dtype=_FLOAT_RECORD).reshape(n, k)
        ts_bytes = np.frombuffer(ts_blob, dtype=np.uint8).reshape(n, _TS_BYTES)
        if not (records["tag"] == FLOAT_TAG).all() or not (ts_bytes[:, 0] == TIMESTAMP_TAG).all():
            return None
        varint = ts_bytes[:, 1:].astype(np.int64)
        if not ((varint[:, :4] >= 0x80).all() and (varint[:, 4] < 0x80).all()):
            return None
        seconds = ((varint & 0x7F) << np.arange(0, 35, 7, dtype=np.int64)).sum(axis=1)
        values = records["value"].astype(np.float64)
        seconds[~present] = -1
        values[~present] = np.nan
        return values, seconds

    def _parse_slow(self, replies: list[list[bytes | None]]) -> tuple[np.ndarray, np.ndarray]:
        k = self._n_features
        values = np.full((len(replies), k), np.nan)
        seconds = np.full(len(replies), -1, dtype=np.int64)
        for i, reply in enumerate(replies):
            if reply[k] is None:
                continue
            seconds[i] = decode_timestamp(bytes(reply[k] or b""))
            for j in range(k):
                value = decode_value(reply[j])
                if value is not None:
                    values[i, j] = np.float32(value)
        return values, seconds


def _spread(
    terminal_ids: Sequence[str], distinct: list[str], values: np.ndarray, seconds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows read for ``distinct`` terminals, one per entry of ``terminal_ids`` (-1 / NaN
    for a terminal not among them)."""
    n = len(terminal_ids)
    position = dict(zip(distinct, range(len(distinct)), strict=True))
    at = np.fromiter(map(position.get, terminal_ids, repeat(-1, n)), np.int64, n)
    known = at >= 0
    out_values = np.full((len(terminal_ids), values.shape[1]), np.nan)
    out_seconds = np.full(len(terminal_ids), -1, dtype=np.int64)
    out_values[known], out_seconds[known] = values[at[known]], seconds[at[known]]
    return out_values, out_seconds


def _is_us_array(as_of: object) -> bool:
    return isinstance(as_of, np.ndarray) and as_of.dtype == np.int64
