"""Contract of every real-time feature store: the same assertions over memory and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.interface import FeatureMatrix, FeatureStore, InMemoryProfileReader, RowFlag
from features.realtime import BatchFeatureStore, InMemoryFeatureStore, RedisFeatureStore
from streams.events import Transaction

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)  # a Monday


def tx(i: int, at: timedelta, amount: float, card: str = "C1", term: str = "TA") -> Transaction:
    return Transaction(
        transaction_id=f"tx{i}",
        event_time=T0 + at,
        card_id=card,
        customer_id="U1",
        terminal_id=term,
        amount=amount,
        channel="ecom",
        merchant_category="5812",
    )


def col(m: FeatureMatrix, name: str) -> list[float]:
    return [float(v) for v in m.column(name)]


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest) -> Iterator[BatchFeatureStore]:
    if request.param == "memory":
        yield InMemoryFeatureStore()
        return
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    yield RedisFeatureStore(client, prefix=prefix)


def state_of(store: BatchFeatureStore) -> dict[str, bytes]:
    if isinstance(store, InMemoryFeatureStore):
        return {k: v for k, v in store.state.items() if k.startswith(f"{store.prefix}:")}
    assert isinstance(store, RedisFeatureStore)
    keys = sorted(store.client.scan_iter(match=f"{store.prefix}:*", count=1000))
    return {k.decode(): store.client.get(k) for k in keys}


def test_shape_order_and_new_card_defaults(store: BatchFeatureStore) -> None:
    assert isinstance(store, FeatureStore)
    m = store.update_and_read_batch([tx(1, timedelta(0), 42.5)])
    assert m.values.shape == (1, len(FEATURE_NAMES)) and m.values.dtype == np.float32
    assert m.names == FEATURE_NAMES and len(FEATURE_SET_ID) == 14
    assert col(m, "card_is_new") == [1.0] and col(m, "terminal_is_new_for_card") == [1.0]
    assert col(m, "card_tx_count_30d") == [0.0] and col(m, "terminal_tx_count_30d") == [0.0]
    assert col(m, "card_seconds_since_prev") == [30 * 86400.0]
    assert col(m, "tx_amount") == [42.5] and col(m, "tx_channel_code") == [1.0]
    assert col(m, "terminal_days_since_fraud") == [365.0]
    assert m.flags.tolist() == [RowFlag.NEW_CARD]


def test_hand_computed_sequence_and_within_batch_visibility(store: BatchFeatureStore) -> None:
    batch = [
        tx(1, timedelta(0), 10.0, term="TA"),
        tx(2, timedelta(minutes=5), 30.0, term="TB"),
        tx(3, timedelta(hours=2), 20.0, term="TA"),
    ]
    m = store.update_and_read_batch(batch)
    assert col(m, "card_tx_count_1d") == [0.0, 1.0, 2.0]
    assert col(m, "card_tx_count_10m") == [0.0, 1.0, 0.0]
    assert col(m, "card_amount_sum_10m") == [0.0, 10.0, 0.0]
    assert col(m, "card_amount_mean_1d") == [0.0, 10.0, 20.0]
    assert col(m, "card_amount_std_30d") == [0.0, 0.0, 10.0]
    assert col(m, "card_amount_zscore_30d") == [0.0, 0.0, 0.0]
    assert col(m, "card_seconds_since_prev") == [2592000.0, 300.0, 6900.0]
    assert col(m, "card_distinct_terminals_24h") == [0.0, 1.0, 2.0]
    assert col(m, "terminal_is_new_for_card") == [1.0, 1.0, 0.0]
    assert col(m, "card_is_new") == [1.0, 0.0, 0.0]


def test_replay_is_idempotent(store: BatchFeatureStore) -> None:
    batch = [tx(i, timedelta(minutes=7 * i), 5.0 + i, term=f"T{i % 3}") for i in range(20)]
    first = store.update_and_read_batch(batch)
    state = state_of(store)
    again = store.update_and_read_batch(batch)
    assert np.array_equal(first.values, again.values)
    assert state_of(store) == state
    assert all(f & RowFlag.DUPLICATE for f in again.flags)
    assert store.stats.duplicates == 20 and store.stats.transactions == 40


def test_read_batch_leaves_state_unchanged(store: BatchFeatureStore) -> None:
    store.update_batch([tx(1, timedelta(0), 10.0)])
    state = state_of(store)
    probe = [tx(2, timedelta(minutes=1), 11.0), tx(3, timedelta(minutes=2), 12.0)]
    m = store.read_batch(probe)
    assert col(m, "card_tx_count_10m") == [1.0, 2.0]
    assert state_of(store) == state
    served = store.update_and_read_batch(probe)
    assert np.array_equal(m.values, served.values)
    assert np.array_equal(store.read_batch(probe).values, served.values)


def test_out_of_order_within_lateness_goes_by_event_time(store: BatchFeatureStore) -> None:
    store.update_batch([tx(1, timedelta(hours=1), 10.0)])
    late = store.update_and_read_batch([tx(2, timedelta(minutes=30), 20.0)])
    # tx1 has a later event time: it is not "before" tx2
    assert col(late, "card_tx_count_1d") == [0.0] and late.flags[0] & RowFlag.TOO_LATE == 0
    m = store.update_and_read_batch([tx(3, timedelta(hours=1, minutes=5), 1.0)])
    assert col(m, "card_tx_count_1h") == [2.0]
    assert col(m, "card_amount_sum_10m") == [10.0]
    assert col(m, "card_seconds_since_prev") == [300.0]


def test_too_late_is_scored_not_applied_and_counted(store: BatchFeatureStore) -> None:
    store.update_batch([tx(1, timedelta(hours=5), 10.0), tx(2, timedelta(hours=6), 10.0)])
    m = store.update_and_read_batch([tx(3, timedelta(hours=2), 99.0)])
    assert m.flags[0] & RowFlag.TOO_LATE
    assert col(m, "card_tx_count_1d") == [0.0]  # both known events are after it
    assert store.stats.too_late == 1
    after = store.update_and_read_batch([tx(4, timedelta(hours=6, minutes=10), 1.0)])
    assert col(after, "card_tx_count_1d") == [2.0]  # tx3 was never applied


def test_terminal_counts_use_complete_days(store: BatchFeatureStore) -> None:
    day, midnight = timedelta(days=1), timedelta(hours=-9)  # T0 is 09:00
    history = [
        tx(i, midnight + i * timedelta(hours=6, minutes=1), 1.0, card=f"K{i}", term="TT")
        for i in range(12)
    ]
    store.update_batch(history)  # 4 per day on days 0, 1, 2
    m = store.update_and_read_batch(
        [
            tx(100, midnight + 3 * day + timedelta(minutes=30), 1.0, card="X", term="TT"),
            tx(101, midnight + 3 * day + timedelta(hours=2), 1.0, card="Y", term="TT"),
            tx(102, midnight + 10 * day, 1.0, card="Z", term="TT"),
        ]
    )
    # 00:30 on day 3 is within the lateness of midnight: its reference day is day 2
    assert col(m, "terminal_tx_count_1d") == [4.0, 4.0, 0.0]
    assert col(m, "terminal_tx_count_7d") == [8.0, 12.0, 6.0]  # day 2 + this batch (day 3)
    assert col(m, "terminal_tx_count_30d") == [8.0, 12.0, 14.0]


def test_profiles_come_from_the_reader_and_absurd_values_are_clipped() -> None:
    row = [np.nan] + [1.0] * 6 + [np.inf] + [0.5] * 6 + [-4.0]
    store = InMemoryFeatureStore(profiles=InMemoryProfileReader({"TA": row}))
    m = store.update_and_read_batch([tx(1, timedelta(0), 10.0)])
    assert col(m, "terminal_fraud_count_1d") == [0.0]  # NaN -> default
    assert col(m, "terminal_fraud_share_1d") == [1.0]  # inf -> clip upper bound
    assert col(m, "terminal_fraud_count_2d") == [1.0]
    assert col(m, "terminal_days_since_fraud") == [0.0]
    assert m.flags[0] & RowFlag.CLIPPED and store.stats.clipped_values == 3
    assert np.isfinite(m.values).all()


@pytest.mark.integration
def test_profile_store_down_is_feature_store_unavailable_and_nothing_applied(
    redis_client: Any, redis_prefix: str
) -> None:
    """Profiles are read from Redis before the batch's script runs: when that read fails,
    the scorer gets the one error it backs off on, and the card state is untouched."""
    import redis

    from features.errors import FeatureStoreUnavailable
    from features.profiles.layout import FeastLayout
    from features.profiles.reader import FeastRedisProfileReader

    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    profiles = FeastRedisProfileReader(
        unreachable, FeastLayout(project=f"p{redis_prefix}", verify_with_feast=False)
    )
    store = RedisFeatureStore(redis_client, prefix=redis_prefix, profiles=profiles)
    with pytest.raises(FeatureStoreUnavailable, match="profiles"):
        store.update_and_read_batch([tx(1, timedelta(0), 10.0)])
    assert state_of(store) == {}


def _put(store: BatchFeatureStore, key: str, value: bytes | None) -> None:
    if isinstance(store, InMemoryFeatureStore):
        if value is None:
            store.state.pop(key, None)
        else:
            store.state[key] = value
        return
    assert isinstance(store, RedisFeatureStore)
    if value is None:
        store.client.delete(key)
    else:
        store.client.set(key, value)


@pytest.mark.parametrize("chunk", [0, 4], ids=["one-script", "pipelined"])
def test_a_changed_state_epoch_applies_nothing_and_says_what_it_found(
    store: BatchFeatureStore, chunk: int
) -> None:
    """The epoch check rides in the batch script: while the key holds the expected epoch
    batches apply; once it is gone or different, a batch applies nothing (not even its
    first pipelined chunk) and the error carries the epoch found."""
    from features.errors import FeatureStateLost

    store.pipeline_chunk = chunk
    base = store.prefix
    key = f"{base}:epoch"
    _put(store, key, b"0:aaaa")
    store.follow_epoch(key, b"0:aaaa", store.prefix)
    first = [tx(i, timedelta(minutes=i), 10.0 + i) for i in range(10)]
    store.update_and_read_batch(first)
    before = state_of(store)

    _put(store, key, None)  # Redis lost it
    later = [tx(100 + i, timedelta(hours=1, minutes=i), 5.0) for i in range(10)]
    with pytest.raises(FeatureStateLost) as lost:
        store.update_and_read_batch(later)
    assert lost.value.expected == b"0:aaaa" and lost.value.found is None
    assert {k: v for k, v in state_of(store).items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }

    _put(store, key, b"1:bbbb")  # rebuilt under another epoch
    with pytest.raises(FeatureStateLost) as moved:
        store.update_and_read_batch(later)
    assert moved.value.found == b"1:bbbb"

    store.follow_epoch(key, b"1:bbbb", f"{base}:g1")  # the rebuilt namespace
    m = store.update_and_read_batch(later)
    assert col(m, "card_is_new")[0] == 1.0  # nothing of generation 0 is read
    assert state_of(store) and all(k.startswith(f"{base}:g1:") for k in state_of(store))
