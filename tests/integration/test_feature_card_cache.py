"""The scorer's card cache never changes a feature: cold starts, moved partitions, a second
writer, trims and repeats all serve what one fresh store applying the same stream serves.

Every scenario runs on the in-memory store (unit) and on the real Redis (integration);
"processes" are several store objects over the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from features.definitions import CARD_RING_CAPACITY, CARD_TRIM_CHUNK
from features.errors import FeatureStoreUnavailable
from features.interface import DefaultProfileReader, RowFlag
from features.profiles.errors import ProfileStoreUnavailable
from features.realtime import BatchFeatureStore, InMemoryFeatureStore, RedisFeatureStore
from features.realtime.layout import card_key
from features.realtime.store import ScriptChannel
from streams.events import Transaction

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Factory = Callable[..., BatchFeatureStore]


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

        def memory(**kwargs: Any) -> BatchFeatureStore:
            store = InMemoryFeatureStore(prefix="p", **kwargs)
            store.state = shared
            return store

        yield memory
        return
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    yield lambda **kwargs: RedisFeatureStore(client, prefix=prefix, **kwargs)


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


def _fail_next_round_trip(store: BatchFeatureStore, how: str, *, after: int = 0) -> None:
    """The script round trip after the next ``after`` ones fails once: ``refused``
    (nothing sent), ``not_run`` (the store went on as if sent, the script never ran) or
    ``reply_lost`` (the script ran, its reply was lost, e.g. the connection dropped)."""
    real = store._start
    passed = 0

    def start(
        keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], list[object]]:
        nonlocal passed
        if passed < after:
            passed += 1
            return real(keys, argv, channel)
        store._start = real  # type: ignore[method-assign]
        if how == "refused":
            raise FeatureStoreUnavailable("test", "down before sending")
        finish = real(keys, argv, channel) if how == "reply_lost" else None

        def lost() -> list[object]:
            if finish is not None:
                finish()
            raise FeatureStoreUnavailable("test", f"round trip failed ({how})")

        return lost

    store._start = start  # type: ignore[method-assign]


@pytest.mark.parametrize("how", ["refused", "not_run", "reply_lost"])
def test_a_failed_round_trip_leaves_no_wrong_card_in_the_cache(factory: Factory, how: str) -> None:
    """The cache is updated while the script runs; when the round trip fails, the retry
    of the same batch (as the scorer does) and every later batch still serve exactly."""
    batches = [stream(40)[i : i + 10] for i in range(0, 40, 10)]
    store = factory()
    served = serve([store], batches[:2])
    _fail_next_round_trip(store, how)
    with pytest.raises(FeatureStoreUnavailable):
        store.update_and_read_batch(batches[2])
    retried = store.update_and_read_batch(batches[2])
    assert retried.raw is not None
    duplicates = [bool(f & RowFlag.DUPLICATE) for f in retried.flags]
    assert duplicates == [how == "reply_lost"] * len(batches[2])  # applied exactly once
    served += [retried.raw, *serve([store], batches[3:])]
    for got, want in zip(served, reference(batches), strict=True):
        assert np.array_equal(got, want)


def _mixed_batch(n: int) -> list[Transaction]:
    """Cards in every chunk, repeats across chunks, some rows out of order."""
    base = stream(n, cards=7, step_min=3.0)
    batch = [*base, base[3], base[n // 2]]
    batch[10], batch[11] = batch[11], batch[10]
    return batch


def test_a_pipelined_batch_serves_and_stores_what_one_script_does(factory: Factory) -> None:
    history = stream(30, cards=7, step_min=1.0)
    batch = _mixed_batch(60)
    chunked = factory(pipeline_chunk=8)
    served = serve([chunked], [history, batch])  # 30 rows: one script; 62: 7 chunks of ~9
    assert chunked.stats.duplicates == 32  # the history's 30 rows again, 2 repeats
    whole = InMemoryFeatureStore(pipeline_chunk=0)
    wanted = serve([whole], [history, batch])
    for got, want in zip(served, wanted, strict=True):
        assert np.array_equal(got, want)
    probe = [tx(999, 500.0, card=f"C{c}", term="T1") for c in range(7)]
    cold = factory()  # reads what the chunks left in the store
    assert np.array_equal(cold.read_batch(probe).raw, whole.read_batch(probe).raw)


def test_a_refused_chunk_stops_the_chain_and_the_rest_apply_in_order(factory: Factory) -> None:
    """Another process writes a card that only the 5th chunk holds: that chunk's script
    refuses, the chunks after it (already sent) apply nothing, and all of them are then
    applied one by one, in order."""
    history = [*stream(21, cards=7, step_min=1.0), tx(700, 2.0, card="C9")]
    batch = _mixed_batch(60)
    batch.insert(40, tx(701, 200.0, card="C9"))  # 63 rows: chunks of ~9, row 40 in the 5th
    behind_the_back = [tx(702, 30.0, card="C9")]
    owner, other = factory(pipeline_chunk=8), factory(pipeline_chunk=0)
    owner.update_and_read_batch(history)
    other.update_and_read_batch(behind_the_back)
    sent = 0
    real = owner._start

    def counting(
        keys: list[str], argv: list[bytes | int | str], channel: ScriptChannel | None = None
    ) -> Callable[[], list[object]]:
        nonlocal sent
        sent += 1
        return real(keys, argv, channel)

    owner._start = counting  # type: ignore[method-assign]
    got = owner.update_and_read_batch(batch)
    assert owner.stale_cards == 1
    assert sent == 7 + 3  # 7 chunks sent; the 5th, 6th and 7th again, one by one
    wanted = serve([InMemoryFeatureStore(pipeline_chunk=0)], [history, behind_the_back, batch])
    assert np.array_equal(got.raw, wanted[2])


@pytest.mark.parametrize("chunk", [1, 4])
def test_a_failed_chunk_fails_the_batch_and_the_retry_serves_exactly(
    factory: Factory, chunk: int
) -> None:
    """The round trip of a middle chunk fails: the batch raises (the scorer retries it);
    the chunks before it were applied, so the retry serves them as duplicates with the
    same features, and everything after is exact."""
    batches = [_mixed_batch(60), stream(100)[70:]]
    store = factory(pipeline_chunk=8)
    _fail_next_round_trip(store, "reply_lost", after=chunk)
    with pytest.raises(FeatureStoreUnavailable):
        store.update_and_read_batch(batches[0])
    retried = store.update_and_read_batch(batches[0])
    later = store.update_and_read_batch(batches[1])
    want = reference(batches)
    assert np.array_equal(retried.raw, want[0]) and np.array_equal(later.raw, want[1])


def test_a_pipelined_batch_reads_its_missing_cards_once_before_the_first_chunk(
    factory: Factory,
) -> None:
    """A read between chunks would wait behind the previous chunk's script: every card the
    cache lacks is read in one round trip up front, and counted once."""
    writer = factory()
    writer.update_and_read_batch(stream(30, cards=7, step_min=1.0))
    cold = factory(pipeline_chunk=8)  # a restarted process: nothing cached
    reads: list[int] = []
    real = cold._fetch

    def fetch(keys: list[str]) -> list[bytes | None]:
        reads.append(len(keys))
        return real(keys)

    cold._fetch = fetch  # type: ignore[method-assign]
    cold.update_and_read_batch(_mixed_batch(60)[30:])  # 32 rows, 7 cards: 4 chunks
    assert reads == [7]
    assert (cold.cards.misses, cold.cards.hits) == (7, 0)


class _ProfilesFailOnce(DefaultProfileReader):
    """A profile reader whose ``fail_at``-th read fails (the profile store went away)."""

    def __init__(self, fail_at: int) -> None:
        self.reads, self.fail_at = 0, fail_at

    def read_batch(self, terminal_ids: Sequence[str], as_of_us: np.ndarray) -> np.ndarray:
        self.reads += 1
        if self.reads == self.fail_at:
            raise ProfileStoreUnavailable("test", "profiles went away")
        return super().read_batch(terminal_ids, as_of_us)


def test_a_failed_profile_read_in_a_middle_chunk_fails_the_batch_and_the_retry_is_exact(
    factory: Factory,
) -> None:
    """Chunk 2's profiles fail after its script applied: the batch raises the error the
    scorer backs off on, the later chunks' replies are collected, and the retry (chunks 1
    and 2 now duplicates) serves exactly what one clean pass serves."""
    batches = [_mixed_batch(60), stream(100)[70:]]
    reader = _ProfilesFailOnce(fail_at=2)
    store = factory(pipeline_chunk=8, profiles=reader)
    with pytest.raises(FeatureStoreUnavailable):
        store.update_and_read_batch(batches[0])
    if isinstance(store, RedisFeatureStore):  # every chunk's reply was collected
        assert not store.client.connection_pool._in_use_connections
    retried = store.update_and_read_batch(batches[0])
    later = store.update_and_read_batch(batches[1])
    want = reference(batches)
    assert np.array_equal(retried.raw, want[0]) and np.array_equal(later.raw, want[1])
    assert sum(bool(f & RowFlag.DUPLICATE) for f in retried.flags) >= 18  # chunks 1-2 applied
