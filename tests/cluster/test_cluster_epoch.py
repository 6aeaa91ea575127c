"""The state epoch on a Redis Cluster: a primary that loses its data alone is a lost state,
found by the first batch that touches it, with nothing of that batch written on any node;
a rebuilt epoch reaches every node; a state started before the per-slot copies adopts
them at the scorer's start instead of being taken for lost."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
import redis
from confluent_kafka import TopicPartition
from redis.cluster import ClusterNode, RedisCluster

from features.bench import synthetic_stream
from features.errors import FeatureStateLost
from features.realtime.cluster_store import ClusterFeatureStore
from features.realtime.epoch import Epoch, EpochStore, epoch_copy_key, epoch_copy_keys
from features.redis_nodes import slot_of
from services.scorer.faults import FaultState
from services.scorer.rebuild import RebuildReport
from services.scorer.state import StateGuard
from streams.events import Transaction

pytestmark = pytest.mark.cluster

START = datetime(2026, 3, 2, tzinfo=UTC)


def _batches(n: int, size: int) -> list[list[Transaction]]:
    """``n`` batches of ``size`` over 3,000 cards: every batch reaches every primary."""
    stream = synthetic_stream(3_000, 2_000, per_card_per_day=20, start=START, seed=11)
    return [list(itertools.islice(stream, size)) for _ in range(n)]


def _following(client: RedisCluster, prefix: str) -> tuple[ClusterFeatureStore, EpochStore]:
    epochs = EpochStore(client, prefix)
    epoch = epochs.create(Epoch.first())
    store = ClusterFeatureStore(client, prefix=prefix)
    store.follow_epoch(epochs.key, epoch.value, epoch.namespace(prefix))
    return store, epochs


def _state(client: RedisCluster, prefix: str) -> dict[bytes, bytes]:
    return {k: client.get(k) for k in client.scan_iter(match=f"{prefix}:*", count=1000)}


def _lose_node(node: ClusterNode, prefix: str) -> int:
    """Delete every key of ``prefix`` that ``node`` holds: what the test sees of a primary
    that lost its data with no replica to take over (the shared cluster keeps other
    tests' keys)."""
    with redis.Redis(host=node.host, port=node.port) as direct:
        keys = list(direct.scan_iter(match=f"{prefix}:*", count=1000))
        for key in keys:
            direct.delete(key)
    return len(keys)


def _away_from_the_key(client: RedisCluster, epochs: EpochStore) -> ClusterNode:
    """A primary that does not hold the epoch key itself."""
    home = client.get_node_from_key(epochs.key)
    return next(n for n in client.get_primaries() if n.name != home.name)


def test_a_primary_that_loses_its_data_alone_refuses_the_next_batch(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    store, epochs = _following(cluster_client, cluster_prefix)
    first, later = _batches(2, 400)
    store.update_and_read_batch(first)

    lost = _away_from_the_key(cluster_client, epochs)
    assert _lose_node(lost, cluster_prefix) > 100  # its cards, terminals and epoch copies
    before = _state(cluster_client, cluster_prefix)
    assert epochs.read() is not None  # the epoch key itself survived on its own node

    with pytest.raises(FeatureStateLost) as refused:
        store.update_and_read_batch(later)
    assert refused.value.found is None
    assert refused.value.expected == epochs.read().value  # type: ignore[union-attr]
    assert _state(cluster_client, cluster_prefix) == before  # no node applied its part


def test_a_published_epoch_reaches_every_node_and_the_store_follows_it(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    store, epochs = _following(cluster_client, cluster_prefix)
    first, later = _batches(2, 300)
    store.update_and_read_batch(first)
    rebuilt = Epoch(0, "old").successor()
    epochs.publish(rebuilt)

    copies = epoch_copy_keys(epochs.key)
    assert [slot_of(k) for k in copies] == list(range(16_384))
    held = {cluster_client.get(k) for k in copies[::97] + copies[-1:]}
    assert held == {rebuilt.value}

    with pytest.raises(FeatureStateLost) as moved:
        store.update_and_read_batch(later)
    assert moved.value.found == rebuilt.value
    store.follow_epoch(epochs.key, rebuilt.value, rebuilt.namespace(cluster_prefix))
    store.update_and_read_batch(later)
    namespace = rebuilt.namespace(cluster_prefix)
    nodes = {
        cluster_client.get_node_from_key(k).name
        for k in cluster_client.scan_iter(match=f"{namespace}:card2:*", count=1000)
    }
    assert len(nodes) == 3  # the rebuilt generation is written on every primary


def _no_rebuild(namespace: str, progress: object) -> RebuildReport:
    raise AssertionError(f"a rebuild into {namespace} was started")


def test_a_state_from_before_the_copies_is_adopted_at_start_not_rebuilt(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    epochs = EpochStore(cluster_client, cluster_prefix)
    old = Epoch.first()
    cluster_client.set(epochs.key, old.value)  # written by a release without copies
    probe = epoch_copy_key(epochs.key, slot_of(epochs.key))
    assert cluster_client.get(probe) is None

    store = ClusterFeatureStore(cluster_client, prefix=cluster_prefix)
    guard = StateGuard(epochs, store, FaultState(), _no_rebuild, "scorer-a")
    guard.start([TopicPartition("tx", 0, 500, metadata=str(old))])
    assert guard.epoch == old and cluster_client.get(probe) == old.value
    store.update_and_read_batch(_batches(1, 300)[0])  # every node holds its copy

    # a node lost afterwards is not adopted again: the next start keeps the copies
    # it finds, and the batch that reaches the lost node is refused
    _lose_node(_away_from_the_key(cluster_client, epochs), cluster_prefix)
    again = ClusterFeatureStore(cluster_client, prefix=cluster_prefix)
    restarted = StateGuard(epochs, again, FaultState(), _no_rebuild, "scorer-b")
    restarted.start([TopicPartition("tx", 0, 800, metadata=str(old))])
    with pytest.raises(FeatureStateLost):
        again.update_and_read_batch(_batches(2, 300)[1])
