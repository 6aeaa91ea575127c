"""Building the online feature store a scoring process reads: real-time windows in Redis
plus terminal-risk profiles read straight from Feast's Redis layout."""

from __future__ import annotations

import redis

from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.realtime.redis_store import RedisFeatureStore
from services.settings import CommonSettings


def redis_client(settings: CommonSettings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )


def open_feature_store(client: redis.Redis, settings: CommonSettings) -> RedisFeatureStore:
    profiles = FeastRedisProfileReader(client, FeastLayout(project=settings.feast_project))
    return RedisFeatureStore(client, prefix=settings.redis_prefix, profiles=profiles)
