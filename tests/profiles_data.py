"""Synthetic histories and a slow, obvious oracle of terminal risk for the profile tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from features.profiles.names import DAYS_SINCE_NONE, RISK_WINDOWS_DAYS

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def random_history(
    *, seed: int, n_tx: int, n_terminals: int, days: int, fraud_rate: float = 0.08
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions (transaction_id, terminal_id, event_time, amount) and labels with a
    label delay of 0-12 days; about ``fraud_rate`` of transactions are frauds."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, days * 86400, n_tx))
    tx = pd.DataFrame(
        {
            "transaction_id": [f"x{seed}-{i}" for i in range(n_tx)],
            "terminal_id": [f"T{int(k)}" for k in rng.integers(0, n_terminals, n_tx)],
            "customer_id": [f"C{int(k)}" for k in rng.integers(0, 30, n_tx)],
            "event_time": pd.to_datetime(int(T0.timestamp()) + seconds, unit="s", utc=True)
            + pd.to_timedelta(rng.integers(0, 1_000_000, n_tx), unit="us"),
            "amount": rng.gamma(2.0, 30.0, n_tx).round(2) + 0.01,
        }
    )
    labelled = rng.random(n_tx) < 0.7
    lab = pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"][labelled].to_numpy(),
            "event_time": tx["event_time"][labelled].to_numpy(),
            "is_fraud": (rng.random(int(labelled.sum())) < fraud_rate).astype(np.int8),
            "labelled_at": tx["event_time"][labelled].reset_index(drop=True)
            + pd.to_timedelta(rng.integers(0, 12 * 86400, int(labelled.sum())), unit="s"),
        }
    )
    return tx, lab


def brute_force_risk(
    tx: pd.DataFrame, lab: pd.DataFrame, as_of: pd.Series, terminals: np.ndarray, *, delay_days: int
) -> np.ndarray:
    """Row-by-row transcription of the definition (float64 days, float32 cast at the end)."""
    frauds = lab[lab["is_fraud"] == 1].merge(tx, on="transaction_id", suffixes=("_l", ""))
    out = np.zeros((len(as_of), 15), dtype=np.float64)
    for i, (t, term) in enumerate(zip(as_of, terminals, strict=True)):
        day = t.floor("D")
        at_term = tx[tx["terminal_id"] == term]
        f = frauds[frauds["terminal_id"] == term]
        usable = f[
            (f["labelled_at"].where(f["labelled_at"] > f["event_time"], f["event_time"])) <= t
        ]
        for j, w in enumerate(RISK_WINDOWS_DAYS):
            lo, hi = day - timedelta(days=delay_days + w), day - timedelta(days=delay_days)
            n_all = int(((at_term["event_time"] >= lo) & (at_term["event_time"] < hi)).sum())
            n_fraud = int(((usable["event_time"] >= lo) & (usable["event_time"] < hi)).sum())
            out[i, j] = n_fraud
            out[i, 7 + j] = np.float32(n_fraud / n_all) if n_all else 0.0
        if len(usable):
            elapsed = (t - usable["event_time"].max()) / timedelta(days=1)
            out[i, 14] = min(elapsed, DAYS_SINCE_NONE)
        else:
            out[i, 14] = DAYS_SINCE_NONE
    return out.astype(np.float32)
