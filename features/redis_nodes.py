"""Redis Cluster helpers shared by every store: is a client a cluster, which node serves
each key, and one script per node over keys passed in ARGV (a cluster refuses declared
keys of several slots with CROSSSLOT; a script may touch other slots of its own node)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

MOVED_ATTEMPTS = 20
"""Sends of one node's part while slots move under it, before giving up."""

_REDIRECT_TEXT = ("MOVED", "ASK", "TRYAGAIN", "non local key", "CROSSSLOT", "CLUSTERDOWN")


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def is_redirect(exc: BaseException) -> bool:
    """The error of a key whose slot moved (or is moving): send again after a refresh."""
    if isinstance(
        exc,
        redis.exceptions.MovedError | redis.exceptions.AskError | redis.exceptions.TryAgainError,
    ):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and any(
        text in str(exc) for text in _REDIRECT_TEXT
    )


def refresh_slots(cluster: RedisCluster, attempt: int) -> None:
    """A new slot map, after a short pause (a migrating slot settles in milliseconds)."""
    time.sleep(min(0.01 * 2**attempt, 0.5))
    cluster.nodes_manager.initialize()


def slot_of(key: str | bytes) -> int:
    """The hash slot of ``key`` (its ``{tag}`` if it has one)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """One hash tag per slot: a key holding ``{slot_tags()[s]}`` lives in slot ``s``.
    Found by trying short hexadecimal strings (about 315,000 of them, 0.1 s, once)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing, n = REDIS_CLUSTER_HASH_SLOTS, 0
    while missing:
        tag = f"{n:x}"
        slot = slot_of(tag)
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def group_by_node(
    cluster: RedisCluster, keys: Sequence[str | bytes]
) -> list[tuple[ClusterNode, list[int]]]:
    """The indices of ``keys`` grouped by the primary that serves each one's slot."""
    groups: dict[str, tuple[ClusterNode, list[int]]] = {}
    for i, key in enumerate(keys):
        node = cluster.get_node_from_key(key)
        groups.setdefault(node.name, (node, []))[1].append(i)
    return list(groups.values())


def mget(client: Any, keys: Sequence[str | bytes]) -> list[bytes | None]:
    """``MGET`` on one server; per slot (redis-py's non-atomic split) on a cluster."""
    if is_cluster(client):
        return list(client.mget_nonatomic(list(keys)))
    return list(client.mget(list(keys)))


def script_per_node(
    cluster: RedisCluster,
    source: str,
    keys: Sequence[str],
    args: Callable[[list[str]], list[bytes | int | str]],
) -> list[tuple[list[str], object]]:
    """Run ``source`` once per node over that node's ``keys`` (anchor = its first key; the
    script gets ``args(node_keys)`` as ARGV), all sent before any reply is read. A node
    whose slots moved runs its part again after a slot-map refresh (the script must read
    its keys before it writes). Returns each node part's keys and reply."""
    parts = [[keys[i] for i in idx] for _, idx in group_by_node(cluster, keys)]
    replies: list[tuple[list[str], object]] = []
    for attempt in range(MOVED_ATTEMPTS):
        moved: list[list[str]] = []
        sent = [(part, _send(cluster, source, part, args(part))) for part in parts]
        failure: BaseException | None = None
        for part, read in sent:
            try:
                replies.append((part, read()))
            except redis.exceptions.ResponseError as exc:
                if not is_redirect(exc):
                    failure = failure or exc
                moved.append(part)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        if not moved:
            return replies
        refresh_slots(cluster, attempt)
        parts = [
            [part[i] for i in idx] for part in moved for _, idx in group_by_node(cluster, part)
        ]
    raise redis.exceptions.ClusterDownError("slots kept moving under the script")


def _send(
    cluster: RedisCluster, source: str, keys: list[str], args: list[bytes | int | str]
) -> Callable[[], object]:
    node = cluster.get_node_from_key(keys[0])
    client = cluster.get_redis_connection(node)
    script = client.register_script(source)
    pool = client.connection_pool
    conn = pool.get_connection("EVALSHA")
    command = ("EVALSHA", script.sha, 1, keys[0], *args)
    try:
        conn.send_command(*command)
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise

    def read() -> object:
        try:
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                client.script_load(source)
                conn.send_command(*command)
                return conn.read_response()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    return read


CLUSTER_SCHEMES = {"redis-cluster": "redis", "rediss-cluster": "rediss"}
"""URL schemes of a Redis Cluster, and the plain scheme its client is given."""


def redis_for_url(url: str, **options: Any) -> Any:
    """A client for ``url``: a ``RedisCluster`` for ``redis-cluster://`` (any node; the
    client learns the others), else ``redis.Redis``."""
    scheme, _, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        options.pop("health_check_interval", None)
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", **options)
    return redis.Redis.from_url(url, **options)
