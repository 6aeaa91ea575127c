"""Two scorers on a Redis Cluster while its slots move: 20,000 live transactions, a reshard
of 2,000 slots and a primary failover in the middle, every transaction decided once, and
the card, transaction and profile features the single-server store serves.

Terminal counts are shared by the cards of every partition, so their values depend on the
order two scorers happen to interleave partitions in: they are compared by the parity
tests (one ordered stream), not here."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import redis

from features.definitions import FEATURE_NAMES
from features.realtime import RedisFeatureStore
from services.scorer.service import build_scorer
from services.stack.redis_cluster import LocalCluster
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.cluster.moves import client_of, fail_over, reshard
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
)

pytestmark = pytest.mark.cluster

TRANSACTIONS = 20_000
RATE = 2_000.0


def test_two_scorers_decide_each_transaction_once_while_slots_move(
    kafka_bootstrap: str,
    own_cluster: LocalCluster,
    cluster_prefix: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, topics)
    txs = small_world.as_live_events(TRANSACTIONS, rate=RATE)
    scorers = [
        build_scorer(
            scorer_settings(
                scorer_env(
                    kafka_bootstrap, own_cluster.url, topics, cluster_prefix, champion_state, m
                )
            )
        )
        for m in ("s0", "s1")
    ]
    running = [threading.Thread(target=s.run, kwargs={"max_idle_s": 20.0}) for s in scorers]
    for thread in running:
        thread.start()
    producer = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, txs), kwargs={"rate": RATE}
    )
    producer.start()
    time.sleep(2.0)  # the stream is flowing
    cluster_client = client_of(own_cluster)
    assert reshard(own_cluster, cluster_client) is None
    promoted = fail_over(own_cluster, cluster_client)
    producer.join(120)
    for thread in running:
        thread.join(300)

    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == TRANSACTIONS and max(counts.values()) == 1
    assert sum(s.decided for s in scorers) == TRANSACTIONS
    assert all(s.decided > 0 for s in scorers)  # both took part
    assert promoted in {n.port for n in cluster_client.get_primaries()}

    reference = RedisFeatureStore(redis_client, prefix=redis_prefix)
    expected = np.vstack(
        [reference.update_and_read_batch(txs[i : i + 500]).values for i in range(0, len(txs), 500)]
    )
    served = {d.transaction_id: d.features for d in decisions}
    got = np.asarray([served[t.transaction_id] for t in txs], dtype=np.float32)
    own = [j for j, name in enumerate(FEATURE_NAMES) if not name.startswith("terminal_")]
    assert len(own) > 20
    np.testing.assert_array_equal(got[:, own], expected[:, own])
