"""Clients of the outside services, built from settings in one place so every process
connects the same way (TLS files, ACL user in the URL, time-outs)."""

from __future__ import annotations

from typing import Any, cast

import redis

from features.redis_nodes import redis_for_url
from services.settings import CommonSettings


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
    return cast(redis.Redis, redis_for_url(settings.redis_url.get_secret_value(), **options))
