"""The state epoch on the real Redis and broker: what a starting scorer decides from the
epoch and its group's commits, one rebuild however many scorers meet the loss, and a
replay of ``transactions`` that serves the features a fault-free run served."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import numpy as np
import pytest
import redis
from confluent_kafka import TopicPartition

from features.errors import FeatureStateLost
from features.realtime import InMemoryFeatureStore, RedisFeatureStore
from features.realtime.epoch import Epoch, EpochStore
from services.scorer.faults import FaultState
from services.scorer.rebuild import RebuildReport, replay_transactions
from services.scorer.state import StateGuard
from streams.topics import Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import produce

pytestmark = pytest.mark.integration


class Rebuilds:
    """A stand-in rebuild that counts its calls (and takes a moment, as a real one)."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, namespace: str, progress: Callable[[int], None]) -> RebuildReport:
        with self.lock:
            self.namespaces.append(namespace)
        progress(0)
        threading.Event().wait(0.3)
        return RebuildReport(transactions=0, partitions=6, complete=True, seconds=0.3)


def _guard(client: redis.Redis, prefix: str, rebuild: Rebuilds, owner: str) -> StateGuard:
    store = RedisFeatureStore(client, prefix=prefix)
    return StateGuard(EpochStore(client, prefix), store, FaultState(), rebuild, owner)


def _committed(offset: int, epoch: str | None = None) -> list[TopicPartition]:
    if epoch is None:
        return [TopicPartition("tx", 0, offset)]
    return [TopicPartition("tx", 0, offset, metadata=epoch)]


def test_a_first_run_creates_the_epoch_and_a_restart_keeps_it(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    rebuilds = Rebuilds()
    first = _guard(redis_client, redis_prefix, rebuilds, "a")
    first.start(_committed(-1001))  # nothing committed: a first run
    assert first.epoch is not None and first.epoch.generation == 0
    again = _guard(redis_client, redis_prefix, rebuilds, "a")
    again.start(_committed(500, first.metadata))
    assert again.epoch == first.epoch and rebuilds.namespaces == []
    assert again.features.epoch == first.epoch.value  # type: ignore[attr-defined]


def test_a_lost_or_recreated_epoch_at_start_is_rebuilt_into_the_next_generation(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    rebuilds = Rebuilds()
    guard = _guard(redis_client, redis_prefix, rebuilds, "a")
    guard.start(_committed(500, "0:before"))  # commits exist, Redis has no epoch
    assert guard.epoch is not None and guard.epoch.generation == 1
    assert rebuilds.namespaces == [f"{redis_prefix}:g1"]
    assert EpochStore(redis_client, redis_prefix).read() == guard.epoch

    redis_client.set(f"{redis_prefix}:epoch", Epoch(0, "recreated").value)  # a restart
    later = _guard(redis_client, redis_prefix, rebuilds, "a")
    later.start(_committed(900, guard.metadata))
    assert later.epoch is not None and later.epoch.generation == 2


def test_commits_from_before_epochs_adopt_a_redis_that_holds_state(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    redis_client.set(f"{redis_prefix}:card2:{{c1}}", b"\x00" * 64)
    rebuilds = Rebuilds()
    guard = _guard(redis_client, redis_prefix, rebuilds, "a")
    guard.start(_committed(500))  # committed, no metadata
    assert guard.epoch is not None and guard.epoch.generation == 0 and rebuilds.namespaces == []


def test_two_scorers_meeting_the_loss_rebuild_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    rebuilds = Rebuilds()
    guards = [_guard(redis_client, redis_prefix, rebuilds, name) for name in ("a", "b")]
    for guard in guards:
        guard.start(_committed(-1001))
    redis_client.delete(f"{redis_prefix}:epoch")  # Redis lost it
    lost = FeatureStateLost("epoch", guards[0].epoch.value, None)  # type: ignore[union-attr]
    workers = [threading.Thread(target=g.recover, args=(lost, lambda: None)) for g in guards]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert rebuilds.namespaces == [f"{redis_prefix}:g1"]
    assert guards[0].epoch == guards[1].epoch and guards[0].epoch.generation == 1  # type: ignore[union-attr]
    assert not any(g.faults.active("state_lost") for g in guards)


def test_the_replay_serves_what_the_first_pass_served(
    kafka_bootstrap: str, topics: Topics, small_world: SmallWorld
) -> None:
    """Transactions replayed from the topic (six partitions merged by event time) leave a
    state in which every transaction reads the features it had the first time."""
    events = small_world.as_live_events(3_000, rate=1_000.0)
    produce(kafka_bootstrap, topics.transactions, events)
    first = InMemoryFeatureStore()
    served = np.concatenate(
        [first.update_and_read_batch(events[i : i + 250]).raw for i in range(0, 3_000, 250)]
    )
    rebuilt = InMemoryFeatureStore(prefix=f"mem{uuid.uuid4().hex[:6]}")
    report = replay_transactions(kafka_bootstrap, topics.transactions, rebuilt)
    assert (report.transactions, report.complete) == (3_000, True)
    replayed = np.concatenate(
        [rebuilt.update_and_read_batch(events[i : i + 250]).raw for i in range(0, 3_000, 250)]
    )
    assert np.array_equal(served, replayed)
