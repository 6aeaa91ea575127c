"""The scorer's feature store serves Feast profiles as of the transaction's own time.

A regression test for a unit mix-up: the store once handed the profile reader float
seconds where it expects int64 microseconds, so rows were never aged or expired online
while the offline builder did both (training/serving skew).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import redis

from features.definitions import FEATURE_INDEX
from features.profiles.layout import FeastLayout
from features.profiles.reader import FeastRedisProfileReader
from features.profiles.risk import terminal_risk
from features.profiles.writer import TerminalLabel, TerminalRiskWriter
from features.realtime.redis_store import RedisFeatureStore
from streams.events import Transaction

pytestmark = pytest.mark.integration

FRAUD_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _tx(tid: str, when: datetime) -> Transaction:
    return Transaction(
        transaction_id=tid,
        event_time=when,
        card_id=f"K{tid}",
        customer_id=f"U{tid}",
        terminal_id="T-risky",
        amount=12.0,
    )


# 36 h: the row (written 24 h after the fraud) is 12 h old -> aged to 1.5 days, as offline;
# 74 h: the row is 50 h old, past the view's 2-day TTL -> the default, as Feast would serve.
@pytest.mark.parametrize(("hours_after", "expected_days"), [(36, 1.5), (74, 365.0)])
def test_days_since_fraud_is_aged_and_expired_like_offline(
    redis_client: redis.Redis, redis_prefix: str, hours_after: int, expected_days: float
) -> None:
    layout = FeastLayout(project=f"fraud_{redis_prefix}")
    writer = TerminalRiskWriter(redis_client, layout, state_prefix=redis_prefix)
    fraud = TerminalLabel("tx-fraud", "T-risky", FRAUD_AT, FRAUD_AT + timedelta(hours=1))
    written_at = FRAUD_AT + timedelta(days=1)
    writer.apply_labels([fraud], as_of=written_at)
    try:
        store = RedisFeatureStore(
            redis_client,
            prefix=redis_prefix,
            profiles=FeastRedisProfileReader(redis_client, layout),
        )
        when = FRAUD_AT + timedelta(hours=hours_after)
        served = store.read_batch([_tx("tx-query", when)]).raw
        assert served is not None
        online = float(served[0, FEATURE_INDEX["terminal_days_since_fraud"]])

        history = pd.DataFrame(
            {
                "transaction_id": ["tx-fraud", "tx-query"],
                "terminal_id": ["T-risky"] * 2,
                "event_time": pd.to_datetime([FRAUD_AT, when], utc=True),
            }
        )
        labels = pd.DataFrame(
            {
                "transaction_id": ["tx-fraud"],
                "is_fraud": [1],
                "labelled_at": pd.to_datetime([fraud.labelled_at], utc=True),
            }
        )
        offline = terminal_risk(
            history, labels, pd.Series(pd.to_datetime([when], utc=True)), terminal_ids=["T-risky"]
        )
        if expected_days < 365.0:  # within the view TTL: aged from the row's own time
            assert float(offline["terminal_days_since_fraud"].iloc[0]) == pytest.approx(1.5)
        assert online == pytest.approx(expected_days, rel=1e-5)
    finally:
        for key in redis_client.scan_iter(match=b"*" + layout.key_suffix):
            redis_client.delete(key)
