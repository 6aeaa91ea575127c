"""Terminal-risk profiles on a Redis Cluster: the writer (labels on the state's node, rows
on the Feast key's node) and the direct reader serve what they serve on one server, and
what the offline builder computes."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import redis
from redis.cluster import RedisCluster

from features.profiles import writer as writer_module
from features.profiles.cache import ProfileCache
from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.profiles.risk import terminal_risk
from features.profiles.writer import TerminalLabel, TerminalRiskWriter, labels_from_frames
from tests.profiles_data import T0, random_history

pytestmark = pytest.mark.cluster

TERMINALS = [f"T{i}" for i in range(20)]


def _seeded_writer(
    client: redis.Redis, prefix: str, tx: pd.DataFrame, **options: int
) -> tuple[FeastLayout, TerminalRiskWriter, datetime]:
    """A writer of a project of its own, its day buckets seeded from ``tx``."""
    end = T0 + timedelta(days=41, hours=20)
    layout = FeastLayout(project=f"fraud_{prefix}")
    writer = TerminalRiskWriter(client, layout, state_prefix=prefix, **options)
    writer.seed_transaction_counts(tx, as_of=end)
    return layout, writer, end


def _serve(client: redis.Redis, prefix: str, tx: pd.DataFrame, lab: pd.DataFrame) -> np.ndarray:
    layout, writer, end = _seeded_writer(client, prefix, tx, key_ttl_seconds=3600)
    labels = labels_from_frames(tx, lab)
    first = writer.apply_labels(labels, as_of=end)
    again = writer.apply_labels(labels, as_of=end)  # a replay after a crash
    assert first.applied > 0 and first.rows_written > 0
    assert again.applied == 0 and again.duplicates == first.applied
    as_of = pd.Series([pd.Timestamp(end)] * len(TERMINALS))
    try:
        return FeastRedisProfileReader(client, layout).read_batch(TERMINALS, as_of)
    finally:
        for key in client.scan_iter(match=b"*" + layout.key_suffix):
            client.delete(key)


def test_profiles_written_and_read_on_the_cluster_equal_one_servers(
    cluster_client: RedisCluster, cluster_prefix: str, redis_client: redis.Redis, redis_prefix: str
) -> None:
    tx, lab = random_history(seed=13, n_tx=4000, n_terminals=20, days=40)
    on_cluster = _serve(cluster_client, cluster_prefix, tx, lab)  # type: ignore[arg-type]
    reference = _serve(redis_client, redis_prefix, tx, lab)
    np.testing.assert_array_equal(on_cluster, reference)
    end = pd.Series([pd.Timestamp(T0 + timedelta(days=41, hours=20))] * len(TERMINALS))
    offline = terminal_risk(tx, lab, end, terminal_ids=TERMINALS).to_numpy()
    np.testing.assert_array_equal(on_cluster[:, :14], offline[:, :14])
    np.testing.assert_allclose(on_cluster[:, 14], offline[:, 14], rtol=2e-6)


def test_a_cached_reader_on_the_cluster_sees_a_label_written_after_it_read(
    cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    client: redis.Redis = cluster_client  # type: ignore[assignment]
    tx, _ = random_history(seed=5, n_tx=2000, n_terminals=20, days=40)
    layout, writer, end = _seeded_writer(client, cluster_prefix, tx)
    cache = ProfileCache(100, len(layout.features), max_age_s=3600)
    cached = FeastRedisProfileReader(client, layout, cache=cache)
    try:
        before = cached.read_raw(TERMINALS)  # no label yet: no rows
        label = TerminalLabel(
            "tx-new", TERMINALS[3], end - timedelta(hours=30), end - timedelta(hours=29)
        )
        writer.apply_labels([label], as_of=end)
        after = cached.read_raw(TERMINALS)
        fresh = FeastRedisProfileReader(client, layout).read_raw(TERMINALS)
        np.testing.assert_array_equal(after[0], fresh[0])
        np.testing.assert_array_equal(after[1], fresh[1])
        assert before[1][3] == -1 and after[1][3] > 0 and cache.hits == len(TERMINALS)
    finally:
        for key in client.scan_iter(match=b"*" + layout.key_suffix):
            client.delete(key)
        client.delete(layout.generation_key)


class _Crash(BaseException):
    """The writer's process dying: nothing after the raise runs."""


def test_a_crash_between_the_label_and_row_steps_is_repaired_by_the_redelivery(
    cluster_client: RedisCluster,
    cluster_prefix: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a cluster the labels reach the state's node and the rows the Feast keys' node in
    two scripts. A crash between them leaves the labels applied and the rows unwritten;
    the feedback processor acknowledges a batch only after the write returned, so the same
    labels come again: all duplicates now, and the rows are written from the state they
    left, equal to one server's."""
    client: redis.Redis = cluster_client  # type: ignore[assignment]
    tx, lab = random_history(seed=17, n_tx=3000, n_terminals=20, days=40)
    layout, writer, end = _seeded_writer(client, cluster_prefix, tx)
    labels = labels_from_frames(tx, lab)
    real = writer_module.script_per_node

    def dies_before_the_rows(cluster: object, source: str, *rest: object) -> object:
        if source == writer_module._ROWS_SCRIPT:
            raise _Crash
        return real(cluster, source, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module, "script_per_node", dies_before_the_rows)
    with pytest.raises(_Crash):
        writer.apply_labels(labels, as_of=end)
    monkeypatch.setattr(writer_module, "script_per_node", real)
    reader = FeastRedisProfileReader(client, layout)
    as_of = pd.Series([pd.Timestamp(end)] * len(TERMINALS))
    try:
        assert (reader.read_raw(TERMINALS)[1] == -1).all()  # labels in, no row written
        again = writer.apply_labels(labels, as_of=end)  # the redelivered batch
        assert again.applied == 0 and again.duplicates > 0 and again.rows_written > 0
        repaired = reader.read_batch(TERMINALS, as_of)
    finally:
        for key in client.scan_iter(match=b"*" + layout.key_suffix):
            client.delete(key)
        client.delete(layout.generation_key)
    reference = _serve(redis_client, redis_prefix, tx, lab)
    np.testing.assert_array_equal(repaired, reference)
