"""The scorer's card cache never changes a feature: cold starts, moved partitions, a second
writer, trims and repeats all serve what one fresh store applying the same stream serves.

Every scenario runs on the in-memory store (unit) and on the real Redis (integration);
"processes" are several store objects over the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from features.definitions import CARD_RING_CAPACITY, CARD_TRIM_CHUNK
from features.interface import RowFlag
from features.realtime import BatchFeatureStore, InMemoryFeatureStore, RedisFeatureStore
from features.realtime.layout import card_key
from streams.events import Transaction

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Factory = Callable[[], BatchFeatureStore]


def tx(
    i: int, minutes: float, card: str = "C1", term: str = "TA", amount: float = 0.0
) -> Transaction:
    return Transaction(
        transaction_id=f"tx{i}",
        event_time=T0 + timedelta(minutes=minutes),
        card_id=card,
        customer_id="U1",
        terminal_id=term,
        amount=amount or 5.0 + (i * 7919) % 300 / 4,
    )


def stream(n: int, cards: int = 3, step_min: float = 11.0) -> list[Transaction]:
    return [tx(i, i * step_min, card=f"C{i % cards}", term=f"T{i % 5}") for i in range(n)]


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def factory(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Makes "scorer processes": stores sharing one state, each with its own card cache."""
    if request.param == "memory":
        shared: dict[str, bytes] = {}

        def memory() -> BatchFeatureStore:
            store = InMemoryFeatureStore(prefix="p")
            store.state = shared
            return store

        yield memory
        return
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    yield lambda: RedisFeatureStore(client, prefix=prefix)


def reference(batches: list[list[Transaction]]) -> list[np.ndarray]:
    """What one in-memory store without a card cache (every card read each batch) serves."""
    store = InMemoryFeatureStore(card_cache_size=0)
    out = []
    for b in batches:
        m = store.update_and_read_batch(b)
        assert m.raw is not None
        out.append(m.raw)
    return out


def serve(stores: list[BatchFeatureStore], batches: list[list[Transaction]]) -> list[np.ndarray]:
    out = []
    for k, b in enumerate(batches):
        m = stores[k % len(stores)].update_and_read_batch(b)
        assert m.raw is not None
        out.append(m.raw)
    return out


def test_a_second_writer_is_detected_and_features_stay_exact(factory: Factory) -> None:
    batches = [stream(60)[i : i + 10] for i in range(0, 60, 10)]
    a, b = factory(), factory()
    served = serve([a, b], batches)  # the card moves between processes every batch
    for got, want in zip(served, reference(batches), strict=True):
        assert np.array_equal(got, want)
    assert a.stale_cards >= 3 and b.stale_cards >= 3  # every card was re-read when stale


def test_cold_cache_after_a_restart_and_after_clear_cache(factory: Factory) -> None:
    batches = [stream(45)[i : i + 9] for i in range(0, 45, 9)]
    first = factory()
    served = serve([first], batches[:2])
    restarted = factory()  # a new process: empty cache, same state
    served += serve([restarted], batches[2:4])
    misses = restarted.cards.misses
    restarted.clear_cache()  # e.g. the scorer's partitions were revoked
    served += serve([restarted], batches[4:])
    assert restarted.cards.misses == misses + 3 and restarted.stale_cards == 0
    for got, want in zip(served, reference(batches), strict=True):
        assert np.array_equal(got, want)


def test_replay_through_another_process_is_all_duplicates(factory: Factory) -> None:
    batch = stream(30)
    a, b = factory(), factory()
    first = a.update_and_read_batch(batch)
    again = b.update_and_read_batch(batch)  # a crash before commit; the partition moved
    assert np.array_equal(first.values, again.values)
    assert all(f & RowFlag.DUPLICATE for f in again.flags)
    replay_a = a.update_and_read_batch(batch)  # the old owner's cache is still right
    assert np.array_equal(first.values, replay_a.values) and a.stale_cards == 0


def test_repeats_inside_one_batch(factory: Factory) -> None:
    base = stream(12)
    batch = [*base[:6], base[2], *base[6:], base[2], base[7]]
    m = factory().update_and_read_batch(batch)
    assert m.raw is not None
    dup = [i for i, f in enumerate(m.flags) if f & RowFlag.DUPLICATE]
    assert dup == [6, 13, 14]
    assert np.array_equal(m.raw[dup], m.raw[[2, 2, 8]])
    fresh = [i for i in range(len(batch)) if i not in dup]
    assert np.array_equal(m.raw[fresh], reference([base])[0])


def test_rings_are_trimmed_and_features_do_not_change(factory: Factory) -> None:
    n = CARD_RING_CAPACITY + 3 * CARD_TRIM_CHUNK
    one_card = [tx(i, i * 0.5, amount=1.0 + i % 17) for i in range(n)]
    batches = [one_card[i : i + 37] for i in range(0, n, 37)]
    store = factory()
    served = serve([store], batches)
    for got, want in zip(served, reference(batches), strict=True):
        assert np.array_equal(got, want)
    value = store._fetch([card_key(store.prefix, "C1")])[0]
    assert value is not None
    records = (len(value) - 12) // 32
    assert CARD_RING_CAPACITY <= records < CARD_RING_CAPACITY + CARD_TRIM_CHUNK
    # a cold reader of the trimmed ring serves the same as the writer's cache
    probe = [tx(n + 1, n * 0.5 + 1)]
    assert np.array_equal(factory().read_batch(probe).values, store.read_batch(probe).values)
