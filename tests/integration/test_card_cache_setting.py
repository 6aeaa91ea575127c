"""``FRAUD_CARD_CACHE_SIZE`` reaches the card cache of the stores the scorer and the REST API
open, and ``0`` turns the cache off: every card is read from Redis in every batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from pydantic import SecretStr, ValidationError

from features.realtime import RedisFeatureStore
from services.scorer.wiring import open_feature_store, open_following_store
from services.settings import CommonSettings
from streams.events import Transaction

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _settings(redis_url: str, prefix: str, **values: object) -> CommonSettings:
    return CommonSettings(redis_url=SecretStr(redis_url), redis_prefix=prefix, **values)


def _batch(start: int, cards: int) -> list[Transaction]:
    return [
        Transaction(
            transaction_id=f"tx{start + i}",
            event_time=T0 + timedelta(minutes=start + i),
            card_id=f"C{i % cards}",
            customer_id="U1",
            terminal_id=f"T{i % 3}",
            amount=10.0 + i,
        )
        for i in range(cards * 2)
    ]


def test_the_default_is_100_000_cards(redis_url: str, redis_prefix: str) -> None:
    settings = _settings(redis_url, redis_prefix)
    store = open_feature_store(redis.Redis.from_url(redis_url), settings)
    assert settings.card_cache_size == 100_000 and store.cards.max_cards == 100_000


def test_the_variable_reaches_the_scorer_and_the_api_store(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUD_CARD_CACHE_SIZE", "1234")
    settings = _settings(redis_url, redis_prefix)
    client = redis.Redis.from_url(redis_url)
    assert open_feature_store(client, settings).cards.max_cards == 1234
    following = open_following_store(client, settings)
    assert following.store.cards.max_cards == 1234  # type: ignore[attr-defined]


def test_a_negative_size_is_refused(redis_url: str, redis_prefix: str) -> None:
    with pytest.raises(ValidationError, match="card_cache_size"):
        _settings(redis_url, redis_prefix, card_cache_size=-1)


def test_size_0_reads_every_card_in_every_batch_and_serves_the_same(
    redis_url: str, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    off = open_feature_store(client, _settings(redis_url, redis_prefix, card_cache_size=0))
    on = open_feature_store(client, _settings(redis_url, f"{redis_prefix}:on"))
    reads: list[int] = []
    fetch = off._fetch

    def counting(keys: list[str]) -> list[bytes | None]:
        reads.append(len(keys))
        return fetch(keys)

    off._fetch = counting  # type: ignore[method-assign]
    for k in range(3):
        batch = _batch(100 * k, cards=7)
        uncached, cached = off.update_and_read_batch(batch), on.update_and_read_batch(batch)
        assert np.array_equal(uncached.values, cached.values)
    assert reads == [7, 7, 7]  # each batch's 7 cards, read again every time
    assert len(off.cards) == 0 and off.cards.hits == 0
    assert on.cards.hits == 14  # the same batches with the cache: read once, then cached


def test_size_0_also_keeps_large_batches_off_the_pipelined_path(
    redis_url: str, redis_prefix: str
) -> None:
    """Pipelined chunks plan from the cache as the previous chunk leaves it; without a
    cache the batch runs as one script."""
    client = redis.Redis.from_url(redis_url)
    store = open_feature_store(client, _settings(redis_url, redis_prefix, card_cache_size=0))
    assert isinstance(store, RedisFeatureStore)
    sent = 0
    start = store._start

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal sent
        sent += 1
        return start(*args, **kwargs)  # type: ignore[arg-type]

    store._start = counting  # type: ignore[method-assign,assignment]
    store.update_and_read_batch(_batch(0, cards=store.pipeline_chunk))  # 2 chunks' worth
    assert sent == 1
