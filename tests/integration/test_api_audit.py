"""The API's audit log in both delivery modes, on the real broker and Redis: what reaches
the topics, what enters the ledger, what a dead broker does to a request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
import redis

from services.api.audit import AUDIT_RECORDS, AuditLog
from services.scorer.ledger import DecisionLedger
from services.stack.process import free_port
from streams.errors import DeliveryFailed
from streams.events import Decision, ReviewCase, Transaction
from streams.kafka import producer_config
from streams.producer import AckedProducer
from streams.topics import Topics
from tests.integration.scorer_helpers import decode_decisions, read_all

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _decision(i: int, outcome: str = "approve") -> Decision:
    return Decision(
        transaction_id=f"audit-{i}",
        card_id=f"C{i % 3}",
        terminal_id="T1",
        event_time=AT,
        amount=10.0 + i,
        score=0.9 if outcome != "approve" else 0.01,
        decision=outcome,  # type: ignore[arg-type]
        model_version="v0001",
        feature_set="fs",
        features=[0.0],
    )


def _case(d: Decision) -> ReviewCase:
    tx = Transaction(
        transaction_id=d.transaction_id,
        event_time=d.event_time,
        card_id=d.card_id,
        customer_id="U1",
        terminal_id=d.terminal_id,
        amount=d.amount,
    )
    return ReviewCase(
        case_id=d.transaction_id,
        transaction=tx,
        score=d.score,
        decision=d.decision,
        model_version="v0001",
    )


def _until(check: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _acked() -> float:
    return AUDIT_RECORDS.labels("acked")._value.get()


def _failed() -> float:
    return AUDIT_RECORDS.labels("failed")._value.get()


@pytest.mark.parametrize("delivery", ["async", "acked"])
def test_decisions_reach_the_topics_and_then_the_ledger(
    delivery: str,
    kafka_bootstrap: str,
    topics: Topics,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    audit = AuditLog(
        AckedProducer(producer_config(kafka_bootstrap, client_id="t")),
        topics,
        ledger,
        delivery,  # type: ignore[arg-type]
    )
    audit.start()
    decisions = [_decision(i, "review" if i % 4 == 0 else "approve") for i in range(40)]
    ids = [d.transaction_id for d in decisions]
    acked_before = _acked()
    try:
        claimed = audit.claim(ids, np.ones(len(ids), dtype=bool))
        assert claimed.all()
        again = audit.claim(ids[:5], np.ones(5, dtype=bool))  # a retry while being written
        assert not again.any()
        asyncio.run(audit.write(decisions, [_case(d) for d in decisions if d.decision == "review"]))
        if delivery == "acked":  # entered before write returned
            assert not ledger.undecided(ids).any()
        assert _until(lambda: not ledger.undecided(ids).any())
        assert _until(lambda: _acked() - acked_before == len(ids))
        assert audit.claim(ids[:1], np.ones(1, dtype=bool)).all()  # released once settled
    finally:
        audit.close()
    logged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert sorted(d.transaction_id for d in logged) == sorted(ids)
    assert len(read_all(kafka_bootstrap, topics.review, idle_s=1.0)) == 10


@pytest.mark.parametrize("delivery", ["async", "acked"])
def test_a_dead_broker_fails_acked_requests_and_is_counted_in_async_mode(
    delivery: str, topics: Topics, redis_client: redis.Redis, redis_prefix: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer = AckedProducer(producer_config(dead, client_id="t", **{"message.timeout.ms": 1_000}))
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    audit = AuditLog(producer, topics, ledger, delivery, ack_timeout_s=3.0)  # type: ignore[arg-type]
    audit.start()
    decisions = [_decision(i) for i in range(3)]
    ids = [d.transaction_id for d in decisions]
    failed_before = _failed()
    try:
        audit.claim(ids, np.ones(3, dtype=bool))
        started = time.monotonic()
        if delivery == "acked":
            with pytest.raises(DeliveryFailed):
                asyncio.run(audit.write(decisions, []))
        else:
            asyncio.run(audit.write(decisions, []))  # the request is answered at once
            assert time.monotonic() - started < 0.5
        assert _until(lambda: _failed() - failed_before == 3)
        assert ledger.undecided(ids).all()  # never entered: a retry is scored and logged again
        assert audit.claim(ids, np.ones(3, dtype=bool)).all()  # released
    finally:
        audit.close(timeout_s=2.0)


def test_an_acked_write_waiting_for_the_broker_leaves_the_event_loop_free(
    topics: Topics, redis_client: redis.Redis, redis_prefix: str
) -> None:
    """While a write waits for an acknowledgement that does not come (broker down), other
    coroutines - health checks, other requests - keep running on the API's event loop."""
    dead = f"127.0.0.1:{free_port()}"
    producer = AckedProducer(producer_config(dead, client_id="t", **{"message.timeout.ms": 1_000}))
    ledger = DecisionLedger(redis_client, redis_prefix, ttl_s=600)
    audit = AuditLog(producer, topics, ledger, "acked", ack_timeout_s=3.0)
    decisions = [_decision(i) for i in range(2)]
    audit.claim([d.transaction_id for d in decisions], np.ones(2, dtype=bool))

    async def scenario() -> tuple[int, BaseException | None]:
        writing = asyncio.ensure_future(audit.write(decisions, []))
        ticks = 0
        while not writing.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return ticks, writing.exception()

    try:
        ticks, error = asyncio.run(scenario())
    finally:
        audit.close(timeout_s=2.0)
    assert isinstance(error, DeliveryFailed)
    assert ticks >= 10  # the ~1 s wait for the failed delivery report did not hold the loop
