"""The real-time features on a Redis Cluster serve exactly what one server serves: the
online/offline parity, replay and TTL tests of tests/integration, run on the cluster, and
the same features as the single-server store."""

from __future__ import annotations

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from features.realtime import RedisFeatureStore
from features.realtime.cluster_store import ClusterFeatureStore
from features.realtime.layout import card_key, terminal_key
from tests.integration.test_feature_parity import (
    assert_parity,
    assert_replay_changes_nothing,
    state_of,
)
from tests.integration.test_state_ttl import STORE, assert_ttls_follow_event_days

pytestmark = pytest.mark.cluster


def test_online_offline_parity_on_the_cluster(
    cluster_client: RedisCluster, cluster_prefix: str, redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = ClusterFeatureStore(cluster_client, prefix=cluster_prefix)
    on_cluster = assert_parity(store)
    keys = state_of(cluster_client, cluster_prefix)  # type: ignore[arg-type]
    nodes = {cluster_client.get_node_from_key(f"{cluster_prefix}{k}").name for k in keys}
    assert len(nodes) == 3  # the state really is spread over every primary
    reference = assert_parity(RedisFeatureStore(redis_client, prefix=redis_prefix))
    assert np.array_equal(on_cluster, reference)


def test_replaying_on_the_cluster_changes_nothing(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    assert_replay_changes_nothing(
        cluster_client,  # type: ignore[arg-type]
        cluster_prefix,
        lambda prefix: ClusterFeatureStore(cluster_client, prefix=prefix),
    )


def test_ttls_follow_event_days_on_the_cluster(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    """The period reaches each node's script: a card and a terminal on different nodes
    keep or renew their TTLs as on one server."""
    card, terminal = card_key(cluster_prefix, "C1"), terminal_key(cluster_prefix, "T1")
    nodes = {cluster_client.get_node_from_key(k).name for k in (card, terminal)}
    assert len(nodes) == 2
    assert_ttls_follow_event_days(
        cluster_client,
        cluster_prefix,
        lambda: ClusterFeatureStore(cluster_client, prefix=cluster_prefix, **STORE),
    )
