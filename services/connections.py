"""Clients of the outside services, built from settings in one place so every process
connects the same way (TLS files, ACL user in the URL, time-outs)."""

from __future__ import annotations

from typing import Any

import redis

from services.settings import CommonSettings


def redis_client(settings: CommonSettings, **overrides: Any) -> redis.Redis:
    """A Redis client for ``FRAUD_REDIS_URL`` (``rediss://`` for TLS, ``user:password@``
    for an ACL user) with the TLS files of the settings."""
    options: dict[str, Any] = {
        "socket_timeout": 5.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        **settings.redis_options(),
        **overrides,
    }
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), **options)
