"""Real-time features: card rings and terminal day buckets, one atomic round trip per batch."""

from features.realtime.memory import InMemoryFeatureStore
from features.realtime.redis_store import RedisFeatureStore
from features.realtime.store import BatchFeatureStore

__all__ = ["BatchFeatureStore", "InMemoryFeatureStore", "RedisFeatureStore"]
