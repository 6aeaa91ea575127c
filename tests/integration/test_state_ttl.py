"""Card and terminal keys expire unless written to. A write sets a key's TTL again when the
key's newest event time moves into a later period of ``ttl_refresh_s`` (a day), whichever
process writes it: a restarted process refreshes nothing its predecessor covered, and a
batch too late to be counted writes nothing. The bytes stay exactly those the in-memory
port of the script holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from features.realtime import InMemoryFeatureStore, RedisFeatureStore
from features.realtime.layout import card_key, terminal_key
from features.realtime.store import BatchFeatureStore
from streams.events import Transaction

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CARD_TTL_S, TERMINAL_TTL_S = 1_000, 500
STORE = {
    "card_ttl_s": CARD_TTL_S,
    "terminal_ttl_s": TERMINAL_TTL_S,
    "ttl_refresh_s": 86_400,
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


def _ttls(client: Any, prefix: str) -> tuple[int, int]:
    return int(client.pttl(card_key(prefix, "C1"))), int(client.pttl(terminal_key(prefix, "T1")))


@pytest.mark.integration
def test_a_ttl_is_set_again_once_per_event_day(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    assert_ttls_follow_event_days(
        redis_client,
        redis_prefix,
        lambda: RedisFeatureStore(redis_client, prefix=redis_prefix, **STORE),
    )


def assert_ttls_follow_event_days(
    redis_client: Any, redis_prefix: str, open_store: Callable[[], BatchFeatureStore]
) -> None:
    """The TTL rule through stores ``open_store`` opens on ``redis_client`` (one server
    or a cluster), against the in-memory port's bytes."""
    store = open_store()
    twin = InMemoryFeatureStore(prefix="twin", **STORE)
    first = [_tx(i, i * 0.1) for i in range(5)] + [_tx(9, 0.2, card="C2")]  # 09:00, day 0
    same_day = [_tx(10, 1.0), _tx(11, 5.0)]  # 10:00 and 14:00 of day 0
    after_restart = [_tx(12, 6.0), _tx(13, 6.5, card="C2")]  # 15:00 of day 0
    late = [_tx(14, 2.0, card="C3")]  # 11:00: beyond the hour of lateness for T1
    next_day = [_tx(20, 16.0)]  # 01:00 of day 1

    def run_down() -> None:  # time passes: the TTLs run down
        redis_client.pexpire(card_key(redis_prefix, "C1"), 50_000)
        redis_client.pexpire(terminal_key(redis_prefix, "T1"), 50_000)

    for s in (store, twin):
        s.update_batch(first)
    card_ttl, term_ttl = _ttls(redis_client, redis_prefix)
    assert CARD_TTL_S * 1000 - 5_000 < card_ttl <= CARD_TTL_S * 1000
    assert TERMINAL_TTL_S * 1000 - 5_000 < term_ttl <= TERMINAL_TTL_S * 1000

    # later events of the same day: appends and day-slot writes leave the TTLs alone
    run_down()
    for s in (store, twin):
        s.update_batch(same_day)
    assert all(0 < t <= 50_000 for t in _ttls(redis_client, redis_prefix))

    # a restarted process knows nothing of its predecessor, and needs nothing: the rule
    # reads the keys' own newest event times
    restarted = open_store()
    restarted.update_batch(after_restart)
    twin.update_batch(after_restart)
    assert all(0 < t <= 50_000 for t in _ttls(redis_client, redis_prefix))

    # a row too late for the terminal changes nothing of it
    restarted.update_batch(late)
    twin.update_batch(late)
    assert 0 < _ttls(redis_client, redis_prefix)[1] <= 50_000

    # the first event of the next day sets both TTLs again
    restarted.update_batch(next_day)
    twin.update_batch(next_day)
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
    """Every batch through a process that sets every TTL on every write (period 0)
    against one that sets them once per event day."""
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
