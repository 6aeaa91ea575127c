"""The one definition of terminal risk: exact hand-computed cases and a brute-force oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from features.profiles.errors import ProfileInputError
from features.profiles.names import DAYS_SINCE_NONE, TERMINAL_RISK_DEFAULTS, TERMINAL_RISK_FEATURES
from features.profiles.risk import terminal_risk
from features.profiles.source import profile_source_frame
from tests.profiles_data import brute_force_risk, random_history

pytestmark = pytest.mark.unit

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _frames(
    rows: list[tuple[str, str, datetime]], labels: list[tuple[str, int, datetime]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    tx = pd.DataFrame(rows, columns=["transaction_id", "terminal_id", "event_time"])
    lab = pd.DataFrame(labels, columns=["transaction_id", "is_fraud", "labelled_at"])
    lab["is_fraud"] = lab["is_fraud"].astype(np.int8)
    return tx, lab


def test_column_order_and_count() -> None:
    assert len(TERMINAL_RISK_FEATURES) == 15
    assert TERMINAL_RISK_FEATURES[0] == "terminal_fraud_count_1d"
    assert TERMINAL_RISK_FEATURES[7] == "terminal_fraud_share_1d"
    assert TERMINAL_RISK_FEATURES[-1] == "terminal_days_since_fraud"


def test_delay_window_and_label_arrival() -> None:
    # terminal T: 4 transactions on day 0, one of them fraud, labelled on day 2 at noon
    day0 = T0
    rows = [(f"t{i}", "T", day0 + timedelta(hours=1 + i)) for i in range(4)]
    tx, lab = _frames(rows, [("t1", 1, day0 + timedelta(days=2, hours=12)), ("t2", 0, day0)])
    as_of = pd.Series(
        [
            day0 + timedelta(days=7, hours=23),  # D - 7 = day 0 excluded: window ends before D-7
            day0 + timedelta(days=8),  # day 0 in [D-8, D-7) for w >= 1
            day0 + timedelta(days=9, hours=5),  # day 0 in window only for w >= 2
            day0 + timedelta(days=2, hours=11),  # label not usable yet
        ]
    )
    out = terminal_risk(tx, lab, as_of, terminal_ids=["T"] * 4)
    assert out["terminal_fraud_count_1d"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert out["terminal_fraud_count_2d"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert out["terminal_fraud_share_2d"].tolist() == [0.0, 0.25, 0.25, 0.0]
    fraud_time = day0 + timedelta(hours=2)
    expected_days = [(t - fraud_time) / timedelta(days=1) for t in as_of[:3]]
    assert out["terminal_days_since_fraud"].tolist()[:3] == pytest.approx(expected_days, rel=1e-7)
    assert out["terminal_days_since_fraud"].iloc[3] == DAYS_SINCE_NONE


def test_unknown_terminal_gets_defaults() -> None:
    tx, lab = _frames([("t0", "T", T0)], [("t0", 1, T0 + timedelta(hours=1))])
    out = terminal_risk(tx, lab, [T0 + timedelta(days=9)], terminal_ids=["nobody"])
    assert out.iloc[0].tolist() == list(TERMINAL_RISK_DEFAULTS)


def test_default_rows_are_the_transactions_themselves() -> None:
    tx, lab = _frames(
        [("t0", "T", T0), ("t1", "T", T0 + timedelta(days=8, hours=3))],
        [("t0", 1, T0 + timedelta(hours=1))],
    )
    out = terminal_risk(tx, lab, tx["event_time"])
    assert out["terminal_fraud_count_1d"].tolist() == [0.0, 1.0]
    assert out["terminal_fraud_share_1d"].tolist() == [0.0, 1.0]


def test_days_since_is_capped() -> None:
    tx, lab = _frames([("t0", "T", T0)], [("t0", 1, T0)])
    out = terminal_risk(tx, lab, [T0 + timedelta(days=400)], terminal_ids=["T"])
    assert out["terminal_days_since_fraud"].iloc[0] == DAYS_SINCE_NONE


def test_mismatched_lengths_are_rejected() -> None:
    tx, lab = _frames([("t0", "T", T0)], [])
    with pytest.raises(ProfileInputError):
        terminal_risk(tx, lab, [T0, T0], terminal_ids=["T"])


@pytest.mark.parametrize("delay_days", [0, 3, 7])
def test_matches_brute_force_on_random_history(delay_days: int) -> None:
    tx, lab = random_history(seed=delay_days, n_tx=1500, n_terminals=12, days=50)
    rng = np.random.default_rng(99)
    as_of = pd.Series(
        pd.to_datetime(
            rng.integers(int(T0.timestamp()), int(T0.timestamp()) + 60 * 86400, 400),
            unit="s",
            utc=True,
        )
    )
    terms = rng.choice(np.array([f"T{i}" for i in range(14)], dtype=object), 400)
    got = terminal_risk(tx, lab, as_of, terminal_ids=terms, delay_days=delay_days)
    want = brute_force_risk(tx, lab, as_of, terms, delay_days=delay_days)
    np.testing.assert_array_equal(got.to_numpy()[:, :14], want[:, :14])
    np.testing.assert_allclose(got.to_numpy()[:, 14], want[:, 14], rtol=1e-7)
    assert (got.to_numpy()[:, :7] > 0).any()  # the random history really exercises frauds


def test_source_rows_equal_terminal_risk_at_their_timestamps() -> None:
    tx, lab = random_history(seed=5, n_tx=600, n_terminals=5, days=20)
    end = T0 + timedelta(days=22, hours=7)
    frame = profile_source_frame(tx, lab, end=end, delay_days=2)
    assert frame["event_timestamp"].max() <= end
    per_terminal_days = frame.groupby("terminal_id")["event_timestamp"].apply(
        lambda s: int((s == s.dt.floor("D")).sum())
    )
    assert per_terminal_days.nunique() == 1  # one day-start row per terminal per day
    again = terminal_risk(
        tx, lab, frame["event_timestamp"], terminal_ids=frame["terminal_id"], delay_days=2
    )
    np.testing.assert_array_equal(frame[list(TERMINAL_RISK_FEATURES)].to_numpy(), again.to_numpy())
    assert frame[list(TERMINAL_RISK_FEATURES)].dtypes.eq(np.float32).all()
