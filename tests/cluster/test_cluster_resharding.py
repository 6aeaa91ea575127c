"""Slots move while batches run: a live reshard of 2,000 slots and a primary failover
(``CLUSTER FAILOVER``) in the middle of a stream change no feature and no state."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from features.realtime import RedisFeatureStore
from features.realtime.cluster_store import ClusterFeatureStore
from services.stack.process import wait_until
from services.stack.redis_cluster import LocalCluster
from tests.integration.test_feature_parity import arrival_stream, serve, state_of, transactions

pytestmark = pytest.mark.cluster

SLOTS_MOVED = 2_000


def _reshard(cluster: LocalCluster, client: RedisCluster) -> subprocess.CompletedProcess[str]:
    primaries = sorted(client.get_primaries(), key=lambda n: n.port)
    ids = [redis.Redis(port=n.port).cluster("MYID") for n in primaries[:2]]
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
    cli = shutil.which("redis-cli")
    assert cli is not None
    command = [cli, "--cluster", "reshard", f"127.0.0.1:{cluster.ports[0]}"]
    command += ["--cluster-from", ids[0], "--cluster-to", ids[1]]
    command += ["--cluster-slots", str(SLOTS_MOVED), "--cluster-yes", "--cluster-pipeline", "20"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _slot_map(port: int) -> frozenset[tuple[str, int, int]]:
    """Which node serves which slots as the node at ``port`` sees them; a slot it still
    lists as migrating or importing shows as ``(node, -1, -1)``."""
    seen: set[tuple[str, int, int]] = set()
    for node in redis.Redis(port=port, socket_timeout=2.0).cluster("NODES").values():
        if node["migrations"]:
            seen.add((node["node_id"], -1, -1))
        for slots in node["slots"]:
            seen.add((node["node_id"], int(slots[0]), int(slots[-1])))
    return frozenset(seen)


def _slot_maps_agree(client: RedisCluster) -> bool:
    """Every node, replicas included, holds one complete slot map with no migration open.
    A replica promoted before gossip told it of the last slot a reshard moved claims one
    slot fewer than the other nodes give it, and Redis leaves that slot unserved: the new
    primary answers CLUSTERDOWN (seen on a slow 2-core VM). An operator checks the same
    (``redis-cli --cluster check``) before a planned failover."""
    try:
        client.nodes_manager.initialize()
        maps = {_slot_map(int(n.port)) for n in client.get_nodes()}
    except (redis.RedisError, OSError):
        return False
    if len(maps) != 1:
        return False
    ranges = next(iter(maps))
    return all(lo >= 0 for _, lo, _ in ranges) and sum(hi - lo + 1 for _, lo, hi in ranges) == 16384


def _wait_for_one_slot_map(client: RedisCluster, when: str) -> None:
    agreed = wait_until(lambda: _slot_maps_agree(client), 60.0, interval_s=0.25)
    assert agreed, f"the nodes did not agree on the slot map {when}"


def _fail_over(client: RedisCluster) -> int:
    """Promote a replica by ``CLUSTER FAILOVER``; its port once the cluster serves it as a
    primary. A replica still syncing (say, a primary demoted a moment ago) cannot take over,
    so the first replica in sync is asked, and another one if it did not take over. Before
    and after, every node must agree on the slot map (:func:`_slot_maps_agree`)."""
    _wait_for_one_slot_map(client, "within a minute")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        client.nodes_manager.initialize()
        for replica in client.get_replicas():
            node = redis.Redis(port=replica.port)
            if node.info("replication").get("master_link_status") != "up":
                continue
            node.execute_command("CLUSTER FAILOVER")
            if not wait_until(lambda n=node: n.role()[0] in (b"master", "master"), 20.0):
                continue

            def seen(port: int = replica.port) -> bool:  # the cluster knows (gossip)
                client.nodes_manager.initialize()
                return port in {n.port for n in client.get_primaries()}

            assert wait_until(seen, 30.0, interval_s=0.5)
            _wait_for_one_slot_map(client, "after the failover")
            return int(replica.port)
        time.sleep(1.0)
    raise AssertionError("no replica took over within two minutes")


def test_a_live_reshard_and_a_failover_mid_stream_change_nothing(
    redis_cluster: LocalCluster,
    cluster_client: RedisCluster,
    cluster_prefix: str,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    stream, _ = arrival_stream(days=12, seed=7)
    txs = transactions(stream.drop_duplicates("transaction_id").iloc[:10_000])
    reference = RedisFeatureStore(redis_client, prefix=redis_prefix)
    expected, _ = serve(reference, txs)

    store = ClusterFeatureStore(cluster_client, prefix=cluster_prefix)
    served = [serve(store, txs[:3_000])[0]]
    done: list[subprocess.CompletedProcess[str]] = []
    mover = threading.Thread(target=lambda: done.append(_reshard(redis_cluster, cluster_client)))
    mover.start()
    position = 3_000
    while mover.is_alive() and position < 6_000:  # batches while the slots migrate
        served.append(serve(store, txs[position : position + 250], batch=250)[0])
        position += 250
        time.sleep(0.05)
    mover.join(300)
    assert done and done[0].returncode == 0, done[0].stdout[-2000:] if done else "no reshard"
    served.append(serve(store, txs[position:7_000])[0])
    promoted = _fail_over(cluster_client)
    served.append(serve(store, txs[7_000:])[0])

    assert np.array_equal(np.vstack(served), expected)
    assert state_of(cluster_client, cluster_prefix) == state_of(redis_client, redis_prefix)  # type: ignore[arg-type]
    assert store.redirects > 0  # batches did meet moved slots and were sent again
    assert promoted in {n.port for n in cluster_client.get_primaries()}
