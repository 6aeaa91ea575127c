"""Building the online feature store a scoring process reads: real-time windows in Redis
plus terminal-risk profiles read straight from Feast's Redis layout."""

from __future__ import annotations

import redis

from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.realtime.redis_store import RedisFeatureStore
from services.connections import redis_client
from services.settings import CommonSettings

__all__ = ["open_feature_store", "redis_client"]


def open_feature_store(client: redis.Redis, settings: CommonSettings) -> RedisFeatureStore:
    # verify_with_feast=False: importing Feast would cost the scorer ~140 MB of RSS; the
    # layout is verified against the pinned Feast by the tests and by the feedback writer.
    layout = FeastLayout(project=settings.feast_project, verify_with_feast=False)
    profiles = FeastRedisProfileReader(client, layout)
    return RedisFeatureStore(client, prefix=settings.redis_prefix, profiles=profiles)
