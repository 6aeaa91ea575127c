"""The model benchmark's two evaluation protocols and their CP@100 ceilings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from models.bench import evaluate_both_ways

pytestmark = pytest.mark.unit


def _table_and_outcome() -> tuple[pd.DataFrame, Any]:
    """Day 0 of training: card c0 commits fraud (known compromised). Test days 0 and 1:
    fraud on c0 (excluded handbook-style) and c1 (day 0, caught) and again c1 (day 1),
    legit c2, c3. The model ranks c2 above everything (a false alarm) on both days."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    test_start = t0 + pd.Timedelta(days=10)
    rows = [
        ("c0", t0, 1, np.nan),
        ("c0", test_start, 1, 0.5),
        ("c1", test_start, 1, 0.4),
        ("c2", test_start, 0, 0.9),
        ("c3", test_start, 0, 0.1),
        ("c1", test_start + pd.Timedelta(days=1), 1, 0.6),
        ("c2", test_start + pd.Timedelta(days=1), 0, 0.9),
        ("c3", test_start + pd.Timedelta(days=1), 0, 0.2),
    ]
    table = pd.DataFrame(rows, columns=["card_id", "event_time", "is_fraud", "score"])
    test = table["event_time"] >= test_start
    outcome = SimpleNamespace(
        test_mask=test.to_numpy(),
        test_scores=table.loc[test, "score"].to_numpy(),
        windows=SimpleNamespace(test_start=test_start, train_end=t0 + pd.Timedelta(days=3)),
    )
    return table, outcome


def test_card_precision_and_its_ceiling_both_ways() -> None:
    table, outcome = _table_and_outcome()
    result = evaluate_both_ways(table, cast(Any, outcome), k=2)
    plain, handbook = result["plain"], result["handbook"]
    # plain, k=2: day 0 top cards c2 (legit), c0 (fraud) -> 1/2; day 1 c2, c1 -> 1/2
    assert plain["card_precision_at_2"] == pytest.approx(0.5)
    # a perfect ranking: day 0 c0, c1 -> 2/2; day 1 only c1 is fraudulent -> 1/2
    assert plain["card_precision_at_2_ceiling"] == pytest.approx(0.75)
    # handbook: c0 excluded (known before the test); day 0 c2, c1 -> 1/2; day 1 c1 was
    # caught on day 0 and is ignored -> c2, c3 -> 0/2
    assert handbook["card_precision_at_2"] == pytest.approx(0.25)
    assert handbook["card_precision_at_2_ceiling"] == pytest.approx(0.25)
    assert handbook["excluded_known_compromised_cards"] == 1
