"""The production real-time store: card reads by ``MGET`` and one ``EVALSHA`` per batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import redis

from features.errors import FeatureStoreUnavailable
from features.realtime.store import LUA_SOURCE, BatchFeatureStore, Reply

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)


class RedisFeatureStore(BatchFeatureStore):
    """Card rings and terminal day buckets in Redis, updated and read in one round trip
    (two when some cards are not in the process's card cache).

    ``client`` must return bytes (``decode_responses=False``). Every key of a card
    (terminal) carries the hash tag ``{card_id}`` (``{terminal_id}``); on a Redis
    Cluster :class:`features.realtime.cluster_store.ClusterFeatureStore` splits the batch
    per node (the script is declared ``allow-cross-slot-keys`` for that).
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

    def _fetch(self, keys: list[str]) -> list[bytes | None]:
        try:
            return list(self.client.mget(keys))
        except _UNAVAILABLE as exc:
            raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc

    def _start(self, keys: list[str], argv: list[bytes | int | str]) -> Callable[[], Reply]:
        pool = self.client.connection_pool
        try:
            conn = pool.get_connection("EVALSHA")
        except _UNAVAILABLE as exc:
            raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc
        args = (len(keys), *keys, *argv)

        def send() -> None:
            conn.send_command("EVALSHA", self.sha, *args)

        def finish() -> Reply:
            try:
                try:
                    reply = conn.read_response()
                except redis.exceptions.NoScriptError:
                    self.sha = self.client.script_load(LUA_SOURCE)
                    send()
                    reply = conn.read_response()
                return list(reply)
            except _UNAVAILABLE as exc:
                conn.disconnect()
                raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc
            finally:
                pool.release(conn)

        try:
            send()
        except _UNAVAILABLE as exc:
            conn.disconnect()
            pool.release(conn)
            raise FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}") from exc
        return finish

    def memory_usage(self, key: str) -> int:
        """Bytes Redis uses for one key (``MEMORY USAGE``), 0 if absent."""
        return int(self.client.memory_usage(key, samples=0) or 0)
