"""A pipelined batch sends its chunks' scripts on one connection, so Redis runs them in the
order sent; a script Redis no longer knows or a connection lost mid-batch still ends with
exact features, and the connection pool gets every connection back once, clean."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from features.errors import FeatureStoreUnavailable
from features.realtime import InMemoryFeatureStore, RedisFeatureStore
from features.realtime.redis_store import ConnectionChannel
from features.realtime.store import ScriptChannel
from services.stack.components import start_redis
from services.stack.process import stop
from streams.events import Transaction

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CHUNK = 8
Start = Callable[..., Callable[[], list[object]]]


def _batch(first: int, n: int = 62, cards: int = 7) -> list[Transaction]:
    """``n`` rows over ``cards`` cards: ``n // CHUNK`` chunks, every card in each."""
    return [
        Transaction(
            transaction_id=f"tx{first + i}",
            event_time=T0 + timedelta(minutes=3 * (first + i)),
            card_id=f"C{i % cards}",
            customer_id="U1",
            terminal_id=f"T{i % 5}",
            amount=5.0 + (i * 7919) % 300 / 4,
        )
        for i in range(n)
    ]


def _reference(batches: list[list[Transaction]]) -> list[np.ndarray]:
    """What one in-memory store applying each batch as one script serves."""
    store = InMemoryFeatureStore(pipeline_chunk=0)
    return [store.update_and_read_batch(b).raw for b in batches]  # type: ignore[misc]


@pytest.fixture()
def client(redis_url: str) -> redis.Redis:
    """A client of its own (its pool counts only this test's connections), every
    connection named so that a test can find and kill them."""
    return redis.Redis.from_url(redis_url, client_name=f"pipe-{uuid.uuid4().hex[:10]}")


def _in_use(client: redis.Redis) -> int:
    return len(client.connection_pool._in_use_connections)


def _created(client: redis.Redis) -> int:
    return int(client.connection_pool._created_connections)


def _count_checkouts(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command name of every connection taken from ``client``'s pool from now on."""
    pool = client.connection_pool
    taken: list[str] = []
    real = pool.get_connection

    def get_connection(command_name: str, *keys: Any, **options: Any) -> Any:
        taken.append(command_name)
        return real(command_name, *keys, **options)

    monkeypatch.setattr(pool, "get_connection", get_connection)
    return taken


def _on_chunk(store: RedisFeatureStore, k: int, act: Callable[[], object]) -> list[int]:
    """Run ``act`` just before the ``k``-th script of the next batches is sent (1-based);
    returns the running count of scripts sent."""
    real: Start = store._start
    sent = [0]

    def start(
        keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], list[object]]:
        sent[0] += 1
        if sent[0] == k:
            act()
        return real(keys, argv, channel)

    store._start = start  # type: ignore[method-assign]
    return sent


def test_a_pipelined_batch_sends_every_chunk_on_one_connection(
    client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisFeatureStore(client, prefix=redis_prefix, pipeline_chunk=CHUNK)
    batches = [_batch(0), _batch(100)]
    taken = _count_checkouts(client, monkeypatch)
    sent = _on_chunk(store, 0, lambda: None)
    served = [store.update_and_read_batch(b).raw for b in batches]
    assert sent[0] == 2 * 7  # 7 chunks a batch, none refused and sent again
    assert taken == ["MGET", "EVALSHA", "EVALSHA"]  # the first batch reads its cards
    assert _created(client) == 1 and _in_use(client) == 0
    for got, want in zip(served, _reference(batches), strict=True):
        assert np.array_equal(got, want)


def test_an_unknown_script_in_chunk_2_redoes_the_rest_one_by_one(
    client: redis.Redis, redis_prefix: str
) -> None:
    """Chunk 2 names a script Redis does not know: it and the chunks behind it on the
    connection (refused by the chain) apply nothing; they are applied one by one."""
    store = RedisFeatureStore(client, prefix=redis_prefix, pipeline_chunk=CHUNK)
    history, batch = _batch(0, n=30), _batch(100)
    store.update_and_read_batch(history)
    known = store.sha

    def forget() -> None:
        store.sha = "0" * 40  # this chunk only: the next chunk's send puts it back

    def remember() -> None:
        store.sha = known

    sent = _on_chunk(store, 2, forget)
    real = store._start

    def start(keys: list[str], argv: list[bytes | int | str], channel: Any = None) -> Any:
        finish = real(keys, argv, channel)
        remember()
        return finish

    store._start = start  # type: ignore[method-assign]
    got = store.update_and_read_batch(batch)
    assert sent[0] == 7 + 6  # 7 chunks sent; the 2nd to the 7th again, one by one
    assert np.array_equal(got.raw, _reference([history, batch])[1])
    assert _in_use(client) == 0 and store.stale_cards == 0


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own: SCRIPT FLUSH empties the script cache of the server."""
    process = start_redis(tmp_path / "redis", tmp_path / "redis.log")
    try:
        yield process.address
    finally:
        stop(process)


def test_script_flush_between_batches(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis)
    store = RedisFeatureStore(client, prefix="flush", pipeline_chunk=CHUNK)
    batches = [_batch(0), _batch(100), _batch(200)]
    served = [store.update_and_read_batch(batches[0]).raw]
    client.script_flush()  # Redis restarted empty of scripts (its data kept)
    served += [store.update_and_read_batch(b).raw for b in batches[1:]]
    for got, want in zip(served, _reference(batches), strict=True):
        assert np.array_equal(got, want)
    assert client.script_exists(store.sha) == [True]
    assert _in_use(client) == 0 and _created(client) <= 2


def _kill_connections(redis_url: str, client: redis.Redis) -> None:
    """Kill every server-side connection of ``client`` (by its name, from another one)."""
    name = client.connection_pool.connection_kwargs["client_name"]
    admin = redis.Redis.from_url(redis_url)
    for entry in admin.client_list():
        if entry.get("name") == name:
            admin.client_kill_filter(_id=entry["id"])
    admin.close()


def test_a_connection_lost_mid_batch_raises_and_the_retry_is_exact(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    store = RedisFeatureStore(client, prefix=redis_prefix, pipeline_chunk=CHUNK)
    batches = [_batch(0), _batch(100)]
    sent = _on_chunk(store, 4, lambda: _kill_connections(redis_url, client))
    with pytest.raises(FeatureStoreUnavailable):
        store.update_and_read_batch(batches[0])  # chunks 1-3 applied, their replies maybe lost
    assert _in_use(client) == 0
    retried = store.update_and_read_batch(batches[0])
    later = store.update_and_read_batch(batches[1])
    want = _reference(batches)
    assert np.array_equal(retried.raw, want[0]) and np.array_equal(later.raw, want[1])
    assert sent[0] >= 7 + 7 and _in_use(client) == 0


def test_no_connection_leaks_over_many_batches_and_failures(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    """Clean batches, a chunk the script cache lost, a connection killed mid-batch and a
    failure of the client itself between chunks, over and over: the pool ends with every
    connection back and no more created than the first rounds needed."""
    store = RedisFeatureStore(client, prefix=redis_prefix, pipeline_chunk=CHUNK)
    real: Start = store._start
    known = store.sha

    def failing(how: str) -> Start:
        sent = [0]

        def start(keys: list[str], argv: list[bytes | int | str], channel: Any = None) -> Any:
            sent[0] += 1
            if sent[0] == 3 and how == "noscript":
                store.sha = "0" * 40
            if sent[0] == 3 and how == "killed":
                _kill_connections(redis_url, client)
            if sent[0] == 3 and how == "raised":
                raise RuntimeError("the client failed while planning chunk 3")
            finish = real(keys, argv, channel)
            store.sha = known
            return finish

        return start

    created: list[int] = []
    first = 0
    for _ in range(12):
        for how in ("clean", "noscript", "killed", "raised"):
            store._start = failing(how)  # type: ignore[method-assign]
            batch = _batch(first)
            first += len(batch)
            try:
                store.update_and_read_batch(batch)
            except (FeatureStoreUnavailable, RuntimeError):
                assert how in ("killed", "raised")
            else:
                assert how in ("clean", "noscript")
            assert _in_use(client) == 0, how
        created.append(_created(client))
    assert created[-1] == created[1] <= 3


def test_a_channel_goes_back_to_the_pool_once_and_never_with_a_reply_unread(
    client: redis.Redis, redis_prefix: str
) -> None:
    store = RedisFeatureStore(client, prefix=redis_prefix)
    pool = client.connection_pool
    with store._script_channel() as channel:
        assert isinstance(channel, ConnectionChannel)
        first = channel.send([f"{redis_prefix}:k"], [])  # no arguments: the script fails
        second = channel.send([f"{redis_prefix}:k"], [])
        with pytest.raises(redis.exceptions.ResponseError):
            first()  # an error reply is a whole reply: the connection stays in step
        assert _in_use(client) == 1
    (conn,) = pool._available_connections
    assert conn._sock is None  # the second reply was never read: disconnected
    with pytest.raises(FeatureStoreUnavailable):
        second()  # its reply went with the connection
    channel.close()  # closing again gives nothing back twice
    assert _in_use(client) == 0 and len(pool._available_connections) == 1
    assert client.ping()

    with store._script_channel() as channel:
        assert channel is not None
        finish = channel.send([f"{redis_prefix}:k"], [])
        with pytest.raises(redis.exceptions.ResponseError):
            finish()
    (conn,) = pool._available_connections
    assert conn._sock is not None  # every reply read: back connected
