"""The scorer on a Redis Cluster (FRAUD_REDIS_URL=redis-cluster://...): every transaction
decided once, with the features the scorer serves on one Redis server."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from services.scorer.service import build_scorer
from services.stack.redis_cluster import LocalCluster
from streams.events import Decision
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
)

pytestmark = pytest.mark.cluster


def _decide(
    bootstrap: str, redis_url: str, prefix: str, state: Path, world: SmallWorld, n: int
) -> list[Decision]:
    # one partition: the order the scorer sees is the order produced (terminal counts are
    # shared by cards of every partition, so another interleaving serves other values)
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.", partitions={"transactions": 1})
    ensure_topics(bootstrap, topics)
    produce(bootstrap, topics.transactions, world.as_events(n))
    env = scorer_env(bootstrap, redis_url, topics, prefix, state, "s0")
    build_scorer(scorer_settings(env)).run(max_idle_s=4.0)
    return decode_decisions(read_all(bootstrap, topics.scored))


def test_a_scorer_on_the_cluster_decides_once_with_single_server_features(
    kafka_bootstrap: str,
    redis_url: str,
    redis_prefix: str,
    redis_cluster: LocalCluster,
    cluster_client: RedisCluster,
    cluster_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    on_cluster = _decide(
        kafka_bootstrap, redis_cluster.url, cluster_prefix, champion_state, small_world, 4_000
    )
    reference = _decide(
        kafka_bootstrap, redis_url, redis_prefix, champion_state, small_world, 4_000
    )

    assert max(Counter(d.transaction_id for d in on_cluster).values()) == 1
    assert len(on_cluster) == len(reference) == 4_000
    served = {d.transaction_id: d.features for d in on_cluster}
    assert served == {d.transaction_id: d.features for d in reference}
    decided = [k for k in cluster_client.scan_iter(match=f"{cluster_prefix}:decided:*")]
    assert len(decided) == 4_000  # the ledger marked every decision, on every node
    assert len({cluster_client.get_node_from_key(k).name for k in decided}) == 3
