"""Cached terminal profiles read exactly what Redis holds: a writer of the project makes
every reader read again at its next batch; a row written behind the project's back is seen
once the cached one is ``max_age_s`` old; a Redis that lost the rows is not served from
memory. Real Redis, the real feedback writer."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from pydantic import SecretStr

from features.profiles.cache import ProfileCache
from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.profiles.writer import TerminalLabel, TerminalRiskWriter
from services.scorer.wiring import open_feature_store
from services.settings import CommonSettings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TERMINALS = [f"T{i}" for i in range(40)]


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def layout(redis_client: redis.Redis, redis_prefix: str) -> Iterator[FeastLayout]:
    layout = FeastLayout(project=f"fraud_{redis_prefix}", verify_with_feast=False)
    yield layout
    for key in redis_client.scan_iter(match=b"*" + layout.key_suffix):
        redis_client.delete(key)
    redis_client.delete(layout.generation_key)


def _reader(client: redis.Redis, layout: FeastLayout, **cache: object) -> FeastRedisProfileReader:
    options = {"size": 1_000, "max_age_s": 60.0, **cache}
    size = int(options.pop("size"))  # type: ignore[call-overload]
    return FeastRedisProfileReader(
        client,
        layout,
        cache=ProfileCache(size, len(layout.features), **options),  # type: ignore[arg-type]
    )


def _label(n: int, terminal: str, day: int) -> TerminalLabel:
    at = T0 + timedelta(days=day, minutes=n)
    return TerminalLabel(f"tx{n}", terminal, at, at + timedelta(minutes=5))


@pytest.fixture
def writer(redis_client: redis.Redis, redis_prefix: str, layout: FeastLayout) -> TerminalRiskWriter:
    """The feedback writer, with one label on T1 applied (T1 has a row, T2 none)."""
    labelled = TerminalRiskWriter(redis_client, layout, state_prefix=redis_prefix)
    labelled.apply_labels([_label(1, "T1", 0)], as_of=T0 + timedelta(days=1))
    return labelled


def _same(left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(left[0], right[0])  # NaN == NaN here: "no value" alike
    np.testing.assert_array_equal(left[1], right[1])


def test_cached_reads_equal_fresh_reads_while_labels_arrive(
    redis_client: redis.Redis, redis_prefix: str, layout: FeastLayout
) -> None:
    feedback = TerminalRiskWriter(redis_client, layout, state_prefix=redis_prefix)
    cached = _reader(redis_client, layout)
    fresh = FeastRedisProfileReader(redis_client, layout)
    rng = random.Random(7)
    n = 0
    for day in range(6):
        for _ in range(rng.randrange(0, 4)):  # some rounds write nothing: the cache holds
            terminal = rng.choice(TERMINALS[:25])  # T25.. never get a row
            n += 1
            feedback.apply_labels([_label(n, terminal, day)], as_of=T0 + timedelta(days=day + 1))
        for _ in range(3):
            batch = [rng.choice(TERMINALS) for _ in range(30)]  # repeats within a batch too
            _same(cached.read_raw(batch), fresh.read_raw(batch))
    cache = cached.cache
    assert cache is not None and n > 0
    assert 0 < cache.hits < cache.lookups  # it served some rows, and read the others


def test_a_label_written_between_two_batches_is_in_the_second(
    redis_client: redis.Redis, layout: FeastLayout, writer: TerminalRiskWriter
) -> None:
    reader = _reader(redis_client, layout)
    before = reader.read_raw(["T1", "T2"])
    assert reader.read_raw(["T1", "T2"])[1].tolist() == before[1].tolist()  # from the cache
    writer.apply_labels([_label(2, "T2", 0)], as_of=T0 + timedelta(days=2))
    after = reader.read_raw(["T1", "T2"])  # both were cached: both are read again
    _same(after, FeastRedisProfileReader(redis_client, layout).read_raw(["T1", "T2"]))
    assert before[1][1] == -1 and after[1][1] > 0  # T2 had no row, has one now


def test_a_row_written_by_hand_is_seen_once_the_cached_one_is_max_age_old(
    redis_client: redis.Redis, layout: FeastLayout, writer: TerminalRiskWriter
) -> None:
    clock = Clock()
    reader = _reader(redis_client, layout, max_age_s=30.0, clock=clock)
    stored = reader.read_raw(["T1"])
    by_hand = layout.encode_row(np.arange(15, dtype=np.float32), 1_800_000_000)
    redis_client.hset(layout.entity_key("T1"), mapping=by_hand)  # no generation published
    clock.now += 29
    _same(reader.read_raw(["T1"]), stored)  # still the cached row
    clock.now += 2
    values, seconds = reader.read_raw(["T1"])
    assert seconds.tolist() == [1_800_000_000] and values[0].tolist() == list(range(15))


def test_rows_lost_by_redis_are_not_served_from_memory(
    redis_client: redis.Redis, layout: FeastLayout, writer: TerminalRiskWriter
) -> None:
    reader = _reader(redis_client, layout)
    assert reader.read_raw(["T1"])[1][0] > 0
    redis_client.delete(layout.entity_key("T1"), layout.generation_key)  # as a flush would
    assert reader.read_raw(["T1"])[1].tolist() == [-1]


def test_the_settings_size_the_scorers_cache_and_zero_turns_it_off(
    redis_url: str, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)

    def reader(**values: object) -> FeastRedisProfileReader:
        settings = CommonSettings(
            redis_url=SecretStr(redis_url), redis_prefix=redis_prefix, **values
        )
        profiles = open_feature_store(client, settings).profiles
        assert isinstance(profiles, FeastRedisProfileReader)
        return profiles

    default = reader().cache
    assert default is not None and default.size == 100_000 and default.max_age_s == 60.0
    sized = reader(profile_cache_size=500, profile_cache_max_age_s=5).cache
    assert sized is not None and (sized.size, sized.max_age_s) == (500, 5.0)
    assert reader(profile_cache_size=0).cache is None
