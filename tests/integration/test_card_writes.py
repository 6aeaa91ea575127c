"""``card_writes="rewrite"``: every written card goes to Redis whole, trimmed to its window.
The features are the ones appending serves, through trims, replays, late events and a cold
cache, and a card then takes only its bytes in Redis (no growth reserve)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import redis

from features.definitions import CARD_RING_CAPACITY
from features.realtime import BatchFeatureStore, InMemoryFeatureStore, RedisFeatureStore
from features.realtime.layout import card_key
from services.scorer.wiring import open_feature_store
from services.settings import CommonSettings
from streams.events import Transaction

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LATENESS_S = 3 * 86_400


def _tx(i: int, hours: float, card: str, term: str) -> Transaction:
    return Transaction(
        transaction_id=f"tx{i}",
        event_time=T0 + timedelta(hours=hours),
        card_id=card,
        customer_id="U1",
        terminal_id=term,
        amount=3.0 + (i * 7919) % 500 / 7,
    )


def batches() -> list[list[Transaction]]:
    """1,500 transactions of 3 cards over 62 days (past the window and the ring's
    capacity), in batches of 50, each batch ending with its first 2 again; every 5th batch
    sent twice in a row (a crash replay), every 7th carrying an event 3 hours late and
    every 11th one 4 days late (too late). A batch spans 50 hours, so the stores allow 3
    days of lateness: a replay later than that after its card's newest event may find
    older history trimmed, lazily when appending, at once when rewriting."""
    txs = [_tx(i, i * 1.0, f"C{i % 3}", f"T{i % 7}") for i in range(1_500)]
    out: list[list[Transaction]] = []
    for k in range(0, len(txs), 50):
        batch = [*txs[k : k + 50], *txs[k : k + 2]]
        if (k // 50) % 7 == 3:
            batch.append(_tx(90_000 + k, k * 1.0 - 3, f"C{k % 3}", "TL"))
        if (k // 50) % 11 == 5:
            batch.append(_tx(95_000 + k, k * 1.0 - 96, f"C{k % 3}", "TL"))
        out.append(batch)
        if (k // 50) % 5 == 2:
            out.append(list(batch))
    return out


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def make_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield lambda suffix, **kw: InMemoryFeatureStore(
            prefix=f"m{suffix}", allowed_lateness_s=LATENESS_S, **kw
        )
        return
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    yield lambda suffix, **kw: RedisFeatureStore(
        client, prefix=f"{prefix}{suffix}", allowed_lateness_s=LATENESS_S, **kw
    )


def _features(store: BatchFeatureStore, stream: list[list[Transaction]]) -> list[np.ndarray]:
    out = []
    for batch in stream:
        m = store.update_and_read_batch(batch)
        assert m.raw is not None
        out.append(m.raw)
    return out


def test_rewriting_cards_serves_the_features_appending_serves(make_store: Any) -> None:
    stream = batches()
    appended = _features(make_store("a", card_writes="append"), stream)
    rewritten = _features(make_store("r", card_writes="rewrite"), stream)
    uncached = _features(make_store("u", card_writes="rewrite", card_cache_size=0), stream)
    for a, r, u in zip(appended, rewritten, uncached, strict=True):
        np.testing.assert_array_equal(r, a)
        np.testing.assert_array_equal(u, a)


def test_an_unknown_write_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="card_writes"):
        InMemoryFeatureStore(card_writes="patch")  # type: ignore[arg-type]


@pytest.mark.integration
def test_a_rewritten_card_holds_no_growth_reserve_in_redis(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = batches()
    sizes: dict[str, list[int]] = {}
    for mode in ("append", "rewrite"):
        prefix = f"{redis_prefix}{mode}"
        store = RedisFeatureStore(redis_client, prefix=prefix, card_writes=mode)  # type: ignore[arg-type]
        for batch in stream[:10]:  # ~170 records per card: none trimmed yet when appending
            store.update_batch(batch)
        keys = [card_key(prefix, f"C{c}") for c in range(3)]
        values = [redis_client.get(k) for k in keys]
        assert all(v is not None and len(v) < CARD_RING_CAPACITY * 64 for v in values)
        usage = [int(redis_client.memory_usage(k, samples=0) or 0) for k in keys]
        for key, value in zip(keys, values, strict=True):  # the same bytes set whole
            redis_client.set(f"{key}:copy", value)  # type: ignore[arg-type]
        fresh = [int(redis_client.memory_usage(f"{k}:copy", samples=0) or 0) for k in keys]
        redis_client.delete(*(f"{k}:copy" for k in keys))
        sizes[mode] = usage
        if mode == "rewrite":
            assert usage == fresh  # nothing beyond what a plain SET of the value takes
        else:
            assert all(u > f for u, f in zip(usage, fresh, strict=True))  # SETRANGE's reserve
    assert sum(sizes["rewrite"]) < sum(sizes["append"])


@pytest.mark.integration
def test_the_setting_reaches_the_scorers_store(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUD_CARD_WRITES", "rewrite")
    assert open_feature_store(redis_client, CommonSettings()).card_writes == "rewrite"
    monkeypatch.setenv("FRAUD_CARD_WRITES", "patch")
    with pytest.raises(ValueError):
        CommonSettings()
