"""The production real-time store: card reads by ``MGET`` and one ``EVALSHA`` per batch."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

import redis

from features.errors import FeatureStoreUnavailable
from features.realtime.store import LUA_SOURCE, BatchFeatureStore, Reply, ScriptChannel

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)
_NOT_RUN = 2
"""The script's reply code for a chunk that applied nothing because its predecessor did
not apply (the chain key does not hold its token)."""


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
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> FeatureStoreUnavailable:
        return FeatureStoreUnavailable(self._where, f"{type(exc).__name__}: {exc}")

    def _script_channel(self) -> contextlib.AbstractContextManager[ScriptChannel | None]:
        return contextlib.closing(ConnectionChannel(self))

    def _start(
        self, keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], Reply]:
        if channel is not None:
            return channel.send(keys, argv)
        pool = self.client.connection_pool
        try:
            conn = pool.get_connection("EVALSHA")
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
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
                raise self._unavailable(exc) from exc
            finally:
                pool.release(conn)

        try:
            send()
        except _UNAVAILABLE as exc:
            conn.disconnect()
            pool.release(conn)
            raise self._unavailable(exc) from exc
        return finish

    def memory_usage(self, key: str) -> int:
        """Bytes Redis uses for one key (``MEMORY USAGE``), 0 if absent."""
        return int(self.client.memory_usage(key, samples=0) or 0)


class ConnectionChannel(ScriptChannel):
    """One pooled connection that carries every script of a pipelined batch, in order.

    Replies are read in the order the scripts were sent. A script Redis does not know
    (``NoScriptError``: it restarted or its scripts were flushed) reads as not run, like a
    chunk its predecessor's failure refused: the scripts behind it on the connection found
    it missing too, or were refused by the chain. The store then applies the chunks from
    there one by one, and that path loads the script again. The connection goes back to
    the pool once, when the channel closes, and only with every reply read; after a
    failure, or with replies still unread, it is disconnected first.
    """

    def __init__(self, store: RedisFeatureStore) -> None:
        self._store = store
        self._pool = store.client.connection_pool
        try:
            self._conn = self._pool.get_connection("EVALSHA")
        except _UNAVAILABLE as exc:
            raise store._unavailable(exc) from exc
        self._sent = 0
        self._replies: list[Reply | Exception] = []
        self._broken: str | None = None
        """Why the connection can carry nothing more (its unread replies are lost)."""
        self._closed = False

    def send(self, keys: list[str], argv: list[bytes | int | str]) -> Callable[[], Reply]:
        if self._broken is not None:
            raise FeatureStoreUnavailable(self._store._where, self._broken)
        try:
            self._conn.send_command("EVALSHA", self._store.sha, len(keys), *keys, *argv)
        except BaseException as exc:
            self._break(exc)  # part of the command may have gone out
            if isinstance(exc, _UNAVAILABLE):
                raise self._store._unavailable(exc) from exc
            raise
        ticket = self._sent
        self._sent += 1
        return lambda: self._reply(ticket)

    def _reply(self, ticket: int) -> Reply:
        while len(self._replies) <= ticket:
            self._replies.append(self._read())
        reply = self._replies[ticket]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _read(self) -> Reply | Exception:
        """The next reply on the connection, or the error that stands for it."""
        if self._broken is not None:
            return FeatureStoreUnavailable(self._store._where, self._broken)
        try:
            return list(self._conn.read_response())
        except redis.exceptions.NoScriptError:
            return [_NOT_RUN]
        except redis.exceptions.ResponseError as exc:  # a whole reply: still in step
            return self._store._unavailable(exc) if isinstance(exc, _UNAVAILABLE) else exc
        except BaseException as exc:
            self._break(exc)
            if isinstance(exc, _UNAVAILABLE):
                return self._store._unavailable(exc)
            raise

    def _break(self, exc: BaseException) -> None:
        self._broken = f"{type(exc).__name__}: {exc}"
        self._conn.disconnect()

    def close(self) -> None:
        """Give the connection back (once): disconnected if a reply is still unread."""
        if self._closed:
            return
        self._closed = True
        if self._broken is None and len(self._replies) < self._sent:
            self._break(RuntimeError("closed with replies unread"))
        self._broken = self._broken or "the batch's channel is closed"
        self._pool.release(self._conn)
