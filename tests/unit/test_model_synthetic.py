"""A small synthetic feature table in the offline builder's column layout, for model tests.

Fraud depends on two features through a known logistic link, so a model has something
real to learn; one feature has missing values, as delayed-label features do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

FEATURES = [
    "amount",
    "customer_tx_count_1d",
    "customer_amount_zscore_30d",
    "terminal_fraud_rate_7d",
    "hour_of_day",
]


def synthetic_table(days: int = 30, per_day: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = pd.Timestamp("2026-01-01", tz="UTC")
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    amount = rng.gamma(2.0, 30.0, n)
    count = rng.poisson(2.0, n).astype(float)
    zscore = rng.normal(0, 1, n)
    terminal_rate = rng.beta(0.5, 20, n)
    terminal_rate[rng.random(n) < 0.1] = np.nan
    hour = rng.integers(0, 24, n).astype(float)
    logit = -6.0 + 1.6 * zscore + 25.0 * np.nan_to_num(terminal_rate) + 0.004 * amount
    is_fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    cards = rng.integers(0, 600, n)
    frame = pd.DataFrame(
        {
            "transaction_id": [f"tx{i:07d}" for i in range(n)],
            "event_time": start + pd.to_timedelta(seconds, unit="s"),
            "card_id": [f"card{c:04d}" for c in cards],
            "customer_id": [f"cust{c:04d}" for c in cards],
            "terminal_id": [f"term{t:04d}" for t in rng.integers(0, 200, n)],
            "amount": amount,
            "is_fraud": is_fraud,
        }
    )
    for name, values in zip(FEATURES, [amount, count, zscore, terminal_rate, hour], strict=True):
        frame[name] = values
    return frame


@pytest.mark.unit
def test_synthetic_table_has_the_builder_layout_and_both_classes() -> None:
    table = synthetic_table(days=5, per_day=100)
    assert list(table.columns[:7]) == [
        "transaction_id",
        "event_time",
        "card_id",
        "customer_id",
        "terminal_id",
        "amount",
        "is_fraud",
    ]
    assert list(table.columns[7:]) == FEATURES[1:]  # amount is a base column and a feature
    assert table["event_time"].is_monotonic_increasing
    assert 0 < table["is_fraud"].sum() < len(table)
