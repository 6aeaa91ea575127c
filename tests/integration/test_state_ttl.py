"""Card and terminal keys expire unless written to. A write refreshes a key's TTL at most
once per ``ttl_refresh_s`` of the writing process, and at once where the process does not
know when it was last set (a restart, a card read from Redis); the bytes stay exactly those
the in-memory port of the script holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from features.realtime import InMemoryFeatureStore, RedisFeatureStore
from features.realtime.layout import card_key, terminal_key
from streams.events import Transaction

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CARD_TTL_S, TERMINAL_TTL_S = 1_000, 500
STORE = {
    "card_ttl_s": CARD_TTL_S,
    "terminal_ttl_s": TERMINAL_TTL_S,
    "ttl_refresh_s": 3_600,
    "allowed_lateness_s": 3_600,
}


def _tx(i: int, hours: float, card: str = "C1", terminal: str = "T1") -> Transaction:
    return Transaction(
        transaction_id=f"ttl{i}",
        event_time=T0 + timedelta(hours=hours),
        card_id=card,
        customer_id="U1",
        terminal_id=terminal,
        amount=10.0 + i,
    )


def _ttls(client: redis.Redis, prefix: str) -> tuple[int, int]:
    return int(client.pttl(card_key(prefix, "C1"))), int(client.pttl(terminal_key(prefix, "T1")))


@pytest.mark.integration
def test_a_ttl_is_refreshed_once_due_or_unknown(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = RedisFeatureStore(redis_client, prefix=redis_prefix, **STORE)
    twin = InMemoryFeatureStore(prefix="twin", **STORE)
    first = [_tx(i, i * 0.1) for i in range(5)] + [_tx(9, 0.2, card="C2")]
    # the same terminal on two days and two cards in one batch
    later = [_tx(10, 1.0), _tx(11, 30.0), _tx(12, 30.5, card="C2"), _tx(13, 31.0)]
    again = [_tx(20, 31.5), _tx(21, 54.0, card="C2"), _tx(22, 55.0)]  # T1: days 1 and 2

    for s in (store, twin):
        s.update_batch(first)
    card_ttl, term_ttl = _ttls(redis_client, redis_prefix)
    assert CARD_TTL_S * 1000 - 5_000 < card_ttl <= CARD_TTL_S * 1000
    assert TERMINAL_TTL_S * 1000 - 5_000 < term_ttl <= TERMINAL_TTL_S * 1000

    # time passes (the TTLs run down); the same process set them moments ago: appends
    # and 8-byte writes leave the TTLs alone
    redis_client.pexpire(card_key(redis_prefix, "C1"), 50_000)
    redis_client.pexpire(terminal_key(redis_prefix, "T1"), 50_000)
    for s in (store, twin):
        s.update_batch(later)
    assert all(0 < t <= 50_000 for t in _ttls(redis_client, redis_prefix))

    # a restarted process does not know when they were set: it refreshes both
    restarted = RedisFeatureStore(redis_client, prefix=redis_prefix, **STORE)
    restarted.update_batch(again)
    twin.update_batch(again)
    card_ttl, term_ttl = _ttls(redis_client, redis_prefix)
    assert card_ttl > CARD_TTL_S * 1000 - 5_000 and term_ttl > TERMINAL_TTL_S * 1000 - 5_000

    for key in (card_key(redis_prefix, c) for c in ("C1", "C2")):
        assert redis_client.get(key) == twin.state[key.replace(redis_prefix, "twin", 1)]
    key = terminal_key(redis_prefix, "T1")
    assert redis_client.get(key) == twin.state[key.replace(redis_prefix, "twin", 1)]


@pytest.mark.integration
def test_refreshing_every_ttl_serves_the_same_features_and_bytes(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """Every batch through a process that refreshes every TTL (interval 0: always due)
    against one that refreshes them once an hour."""
    always = RedisFeatureStore(
        redis_client,
        prefix=f"{redis_prefix}a",
        **{**STORE, "ttl_refresh_s": 0},
    )
    rarely = RedisFeatureStore(redis_client, prefix=f"{redis_prefix}r", **STORE)
    stream = [
        [_tx(100 * b + i, b * 7.0 + i * 0.5, f"C{i % 3}", f"T{i % 4}") for i in range(12)]
        for b in range(8)
    ]
    for batch in stream:
        a = always.update_and_read_batch(batch)
        r = rarely.update_and_read_batch(batch)
        assert a.raw is not None and r.raw is not None
        assert (a.raw == r.raw).all() and (a.flags == r.flags).all()
    for c in range(3):
        a_value = redis_client.get(card_key(f"{redis_prefix}a", f"C{c}"))
        assert a_value == redis_client.get(card_key(f"{redis_prefix}r", f"C{c}"))
    for t in range(4):
        a_value = redis_client.get(terminal_key(f"{redis_prefix}a", f"T{t}"))
        assert a_value == redis_client.get(terminal_key(f"{redis_prefix}r", f"T{t}"))
