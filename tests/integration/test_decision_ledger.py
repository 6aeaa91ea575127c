"""The decision ledger against the real Redis (each test under its own key prefix)."""

from __future__ import annotations

import uuid

import pytest
import redis

from features.errors import FeatureStoreUnavailable
from services.scorer.ledger import DecisionLedger
from services.stack.process import free_port

pytestmark = pytest.mark.integration


def _ids(n: int) -> list[str]:
    return [f"tx-{uuid.uuid4().hex}" for _ in range(n)]


def test_marked_ids_are_decided_with_the_ledger_ttl(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    marked, fresh = _ids(500), _ids(20)
    assert ledger.undecided(marked).all()

    ledger.mark_decided(marked)

    mask = ledger.undecided(marked[:10] + fresh)
    assert mask.tolist() == [False] * 10 + [True] * 20
    ttls = [redis_client.ttl(f"{redis_prefix}:decided:{t}") for t in (marked[0], marked[-1])]
    assert all(590 <= ttl <= 600 for ttl in ttls), ttls
    assert len(list(redis_client.scan_iter(match=f"{redis_prefix}:decided:*", count=1000))) == 500


def test_repeats_inside_one_batch_are_decided_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    a, b = _ids(2)
    assert ledger.undecided([a, b, a, a]).tolist() == [True, True, False, False]
    assert ledger.undecided([]).tolist() == []
    ledger.mark_decided([])  # nothing to do, no call


def test_marking_survives_a_flushed_script_cache(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    first, second = _ids(3), _ids(3)
    ledger.mark_decided(first)
    redis_client.script_flush()  # e.g. a Redis restart or failover: the script is reloaded
    ledger.mark_decided(second)
    assert not ledger.undecided(first + second).any()


def test_redis_down_is_a_typed_error(redis_prefix: str) -> None:
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    ledger = DecisionLedger(down, redis_prefix, ttl_s=600)
    with pytest.raises(FeatureStoreUnavailable, match="decision ledger"):
        ledger.undecided(_ids(2))
    with pytest.raises(FeatureStoreUnavailable, match="decision ledger"):
        ledger.mark_decided(_ids(2))
