"""Building the online feature store a scoring process reads: real-time windows in Redis
plus terminal-risk profiles read straight from Feast's Redis layout."""

from __future__ import annotations

import redis

from features.interface import FeatureStore
from features.profiles.cache import ProfileCache
from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.realtime.cluster_store import redis_feature_store
from features.realtime.epoch import EpochFollower, EpochStore
from features.realtime.redis_store import RedisFeatureStore
from services.connections import redis_client
from services.settings import CommonSettings

__all__ = ["open_feature_store", "open_following_store", "redis_client"]


def open_feature_store(client: redis.Redis, settings: CommonSettings) -> RedisFeatureStore:
    """The store of a scorer: its state epoch is settled by the scorer itself (it may
    have to rebuild the state, see services/scorer/state.py)."""
    # verify_with_feast=False: importing Feast would cost the scorer ~140 MB of RSS; the
    # layout is verified against the pinned Feast by the tests and by the feedback writer.
    layout = FeastLayout(project=settings.feast_project, verify_with_feast=False)
    cache = None
    if settings.profile_cache_size:
        cache = ProfileCache(
            settings.profile_cache_size,
            len(layout.features),
            max_age_s=settings.profile_cache_max_age_s,
        )
    profiles = FeastRedisProfileReader(client, layout, cache=cache)
    return redis_feature_store(
        client,
        prefix=settings.redis_prefix,
        profiles=profiles,
        card_cache_size=settings.card_cache_size,
        card_writes=settings.card_writes,
    )


def open_following_store(client: redis.Redis, settings: CommonSettings) -> FeatureStore:
    """The store of a process that writes the state but never rebuilds it (the REST API):
    it keeps to the state epoch in force (:class:`features.realtime.epoch.EpochFollower`)."""
    return EpochFollower(
        open_feature_store(client, settings), EpochStore(client, settings.redis_prefix)
    )
