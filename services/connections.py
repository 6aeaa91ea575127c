"""Clients of the outside services, built from settings in one place so every process
connects the same way (TLS files, ACL user in the URL, time-outs)."""

from __future__ import annotations

from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from services.settings import CLUSTER_SCHEMES, CommonSettings


def redis_client(settings: CommonSettings, **overrides: Any) -> redis.Redis:
    """A Redis client for ``FRAUD_REDIS_URL`` (``rediss://`` for TLS, ``user:password@``
    for an ACL user) with the TLS files of the settings.

    For ``redis-cluster://`` it is a ``RedisCluster``: the same command methods, keys
    routed by slot; the code paths whose batches span slots check for it
    (:func:`features.redis_nodes.is_cluster`) and split by node."""
    options: dict[str, Any] = {
        "socket_timeout": 5.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        **settings.redis_options(),
        **overrides,
    }
    url = settings.redis_url.get_secret_value()
    scheme, _, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        options.pop("health_check_interval")
        cluster = RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", **options)
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url, **options)
