"""The features benchmark on the cluster: the same report as on one server, with the Redis
CPU and commands summed over every primary (the cluster's cost per transaction)."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from features.bench import delete_prefix, run_feature_bench

pytestmark = pytest.mark.cluster


def test_feature_bench_on_the_cluster_counts_every_primary(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    report = run_feature_bench(
        cluster_client,  # type: ignore[arg-type]
        cluster_prefix,
        cards=40,
        terminals=60,
        warm_days=3,
        repeats=4,
        sizes=(20,),
        cold_size=None,
    )
    assert report["redis_primaries"] == 3
    batch = report["batches"]["20"]
    assert batch["redis_commands_per_batch"]["evalsha"] >= 1  # one script per node part
    assert report["memory"]["bytes_per_active_card"] > 0
    assert delete_prefix(cluster_client, cluster_prefix) > 40  # type: ignore[arg-type]
