"""Offline point-in-time builder on small hand-checked histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.definitions import FEATURE_NAMES, PROFILE_FEATURE_NAMES
from features.errors import TrainingDataError
from features.offline import KEY_COLUMNS, build_training_table

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def frame(rows: list[tuple[str, timedelta, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "event_time": pd.to_datetime([T0 + r[1] for r in rows], utc=True),
            "card_id": [r[2] for r in rows],
            "customer_id": ["U"] * len(rows),
            "terminal_id": [r[3] for r in rows],
            "amount": [r[4] for r in rows],
            "merchant_category": ["5411"] * len(rows),
            "channel": ["pos"] * len(rows),
        }
    )


def test_columns_rows_labels_and_point_in_time() -> None:
    tx = frame(
        [
            ("a", timedelta(0), "C1", "T1", 10.0),
            ("b", timedelta(minutes=3), "C1", "T2", 30.0),
            ("c", timedelta(minutes=4), "C2", "T1", 7.0),
            ("b", timedelta(minutes=3), "C1", "T2", 30.0),  # replayed: dropped
            ("d", timedelta(days=1, hours=1, minutes=1), "C1", "T1", 50.0),
        ]
    )
    labels = pd.DataFrame({"transaction_id": ["b", "zz"], "is_fraud": [1, 1]})
    out = build_training_table(tx, labels, use_profiles=False)
    assert list(out.columns) == [*KEY_COLUMNS, "is_fraud", *FEATURE_NAMES]
    assert out["transaction_id"].tolist() == ["a", "b", "c", "d"]
    assert out["is_fraud"].tolist() == [0, 1, 0, 0]
    assert out["card_tx_count_10m"].tolist() == [0, 1, 0, 0]
    assert out["card_amount_sum_10m"].tolist() == [0, 10, 0, 0]
    assert out["card_tx_count_30d"].tolist() == [0, 1, 0, 2]
    assert out["card_tx_count_1d"].tolist() == [0, 1, 0, 0]  # d is 25 h after a
    assert out["card_amount_mean_30d"].tolist() == [0, 10, 0, 20]
    assert out["card_seconds_since_prev"].tolist() == [2592000, 180, 2592000, 89_880]
    assert out["card_is_new"].tolist() == [1, 0, 1, 0]
    assert out["terminal_is_new_for_card"].tolist() == [1, 1, 1, 0]
    # terminal T1: a and c on day 0; d on day 1 at 13:01 counts day 0
    assert out["terminal_tx_count_1d"].tolist() == [0, 0, 0, 2]
    assert (out[list(PROFILE_FEATURE_NAMES)].to_numpy()[:, -1] == 365.0).all()


def test_arrival_order_decides_lateness() -> None:
    tx = frame(
        [
            ("a", timedelta(hours=3), "C1", "T1", 10.0),
            ("b", timedelta(hours=2, minutes=30), "C1", "T1", 20.0),  # late, within 1 h
            ("c", timedelta(hours=1), "C1", "T1", 40.0),  # beyond the lateness: not applied
            ("d", timedelta(hours=3, minutes=5), "C1", "T1", 1.0),
        ]
    )
    out = build_training_table(tx, None, use_profiles=False).set_index("transaction_id")
    assert out.loc["b", "card_tx_count_1d"] == 0  # a is after b in event time
    assert out.loc["c", "card_tx_count_1d"] == 0
    assert out.loc["d", "card_tx_count_1d"] == 2  # a and b, never c
    assert out.loc["d", "card_amount_sum_1h"] == 30.0


def test_profile_function_gets_event_times_and_the_label_delay() -> None:
    tx = frame([("a", timedelta(0), "C1", "T1", 10.0), ("b", timedelta(1), "C1", "T9", 5.0)])
    seen: dict[str, Any] = {}

    def profile_fn(t: pd.DataFrame, labels: pd.DataFrame, **kw: Any) -> pd.DataFrame:
        seen.update(kw, n=len(t))
        values = np.arange(len(t))[:, None] * np.ones((1, len(PROFILE_FEATURE_NAMES)))
        return pd.DataFrame(values / 10, columns=list(PROFILE_FEATURE_NAMES))

    out = build_training_table(tx, None, label_delay_days=3, profile_fn=profile_fn)
    assert seen["delay_days"] == 3 and seen["n"] == 2
    assert list(seen["as_of"]) == list(tx["event_time"])
    assert out["terminal_fraud_share_7d"].tolist() == [0.0, 0.1]


def test_missing_columns_is_a_typed_error() -> None:
    with pytest.raises(TrainingDataError) as err:
        build_training_table(pd.DataFrame({"transaction_id": ["a"]}), None)
    assert "card_id" in err.value.missing


def test_terminal_risk_is_computed_by_default_never_silently_defaulted() -> None:
    """Without a profile function the builder uses the one terminal-risk definition: a
    known fraud at T1 shows in a later transaction's risk columns (past the label delay)."""
    tx = frame([("a", timedelta(0), "C1", "T1", 10.0), ("b", timedelta(days=10), "C2", "T1", 5.0)])
    labels = pd.DataFrame(
        {
            "transaction_id": ["a"],
            "is_fraud": [1],
            "labelled_at": pd.to_datetime([T0 + timedelta(hours=1)], utc=True),
        }
    )
    out = build_training_table(tx, labels, label_delay_days=7).set_index("transaction_id")
    assert out.loc["a", "terminal_fraud_count_30d"] == 0.0  # its own label is in the future
    assert out.loc["b", "terminal_fraud_count_30d"] == 1.0
    assert out.loc["b", "terminal_days_since_fraud"] == pytest.approx(10.0)
