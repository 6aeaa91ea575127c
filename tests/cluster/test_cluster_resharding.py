"""Slots move while batches run: a live reshard of 2,000 slots and a primary failover
(``CLUSTER FAILOVER``) in the middle of a stream change no feature and no state."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import redis

from features.realtime import RedisFeatureStore
from features.realtime.cluster_store import ClusterFeatureStore
from services.stack.redis_cluster import LocalCluster
from tests.cluster.moves import client_of, fail_over, reshard
from tests.integration.test_feature_parity import arrival_stream, serve, state_of, transactions

pytestmark = pytest.mark.cluster


def test_a_live_reshard_and_a_failover_mid_stream_change_nothing(
    own_cluster: LocalCluster,
    cluster_prefix: str,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    stream, _ = arrival_stream(days=12, seed=7)
    txs = transactions(stream.drop_duplicates("transaction_id").iloc[:10_000])
    reference = RedisFeatureStore(redis_client, prefix=redis_prefix)
    expected, _ = serve(reference, txs)

    cluster_client = client_of(own_cluster)
    store = ClusterFeatureStore(cluster_client, prefix=cluster_prefix)
    served = [serve(store, txs[:3_000])[0]]
    done: list[str | None] = []
    mover = threading.Thread(target=lambda: done.append(reshard(own_cluster, cluster_client)))
    mover.start()
    position = 3_000
    while mover.is_alive() and position < 6_000:  # batches while the slots migrate
        served.append(serve(store, txs[position : position + 250], batch=250)[0])
        position += 250
        time.sleep(0.05)
    mover.join(300)
    assert done == [None], done or f"the reshard did not finish\n{own_cluster.report()}"
    served.append(serve(store, txs[position:7_000])[0])
    promoted = fail_over(own_cluster, cluster_client)
    served.append(serve(store, txs[7_000:])[0])

    assert np.array_equal(np.vstack(served), expected)
    assert state_of(cluster_client, cluster_prefix) == state_of(redis_client, redis_prefix)  # type: ignore[arg-type]
    assert store.redirects > 0  # batches did meet moved slots and were sent again
    assert promoted in {n.port for n in cluster_client.get_primaries()}
