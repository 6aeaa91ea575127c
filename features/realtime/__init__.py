"""Real-time features: card rings and terminal day buckets in Redis, one atomic script
per batch; card state planned in the client from a per-process card cache, checked
against Redis by version (see :mod:`features.realtime.cards`)."""

from features.realtime.memory import InMemoryFeatureStore
from features.realtime.redis_store import RedisFeatureStore
from features.realtime.store import BatchFeatureStore

__all__ = ["BatchFeatureStore", "InMemoryFeatureStore", "RedisFeatureStore"]
