"""The production real-time store: one EVALSHA per batch against Redis."""

from __future__ import annotations

import hashlib
from typing import Any

import redis

from features.errors import FeatureStoreUnavailable
from features.realtime.store import LUA_SOURCE, BatchFeatureStore

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)


class RedisFeatureStore(BatchFeatureStore):
    """Card rings and terminal day buckets in Redis, updated and read in one round trip.

    ``client`` must return bytes (``decode_responses=False``). Every key of a card
    (terminal) carries the hash tag ``{card_id}`` (``{terminal_id}``); the script is
    declared ``allow-cross-slot-keys`` so a batch can later be split per cluster node.
    A connection failure raises :class:`FeatureStoreUnavailable`; the script is atomic, so
    nothing of the failed batch was applied, and a retry of the same batch is safe.
    """

    def __init__(self, client: redis.Redis, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.sha = hashlib.sha1(LUA_SOURCE.encode()).hexdigest()

    @property
    def _where(self) -> str:
        kw = self.client.connection_pool.connection_kwargs
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    def _apply(self, keys: list[str], argv: list[bytes | int | str]) -> list[bytes]:
        try:
            try:
                reply = self.client.evalsha(self.sha, len(keys), *keys, *argv)
            except redis.exceptions.NoScriptError:
                self.sha = self.client.script_load(LUA_SOURCE)
                reply = self.client.evalsha(self.sha, len(keys), *keys, *argv)
        except _UNAVAILABLE as exc:
            raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc
        return list(reply)

    def memory_usage(self, key: str) -> int:
        """Bytes Redis uses for one key (``MEMORY USAGE``), 0 if absent."""
        return int(self.client.memory_usage(key, samples=0) or 0)
