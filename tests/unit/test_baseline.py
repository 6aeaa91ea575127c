"""The naive baseline decides exactly like the batch pipeline (in-memory store, tiny model),
and its Feast-SDK profile reader serves the direct reader's semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from features.definitions import FEATURE_SET_ID
from features.profiles.names import (
    DAYS_SINCE_COLUMN,
    TERMINAL_RISK_DEFAULTS,
    TERMINAL_RISK_FEATURES,
    TERMINAL_RISK_TTL,
)
from loadtest.baseline import NaiveDecider, SdkProfileReader
from models.serving import ServingModel
from services.scorer.pipeline import ScoringPipeline
from tests.small_model import memory_store, small_served, stream

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def served() -> ServingModel:
    return small_served()


def test_naive_decisions_equal_the_batch_pipeline(served: ServingModel) -> None:
    history, fresh = stream(1000), stream(1200)[1000:]
    batch_store, naive_store = memory_store(), memory_store()
    batch_store.update_batch(history)
    naive_store.update_batch(history)

    batch = ScoringPipeline(batch_store, lambda: served).score(fresh).decisions
    decider = NaiveDecider(naive_store, served)
    naive = [decider.decide(tx)[0] for tx in fresh]

    assert [d.transaction_id for d in naive] == [t.transaction_id for t in fresh]
    assert [d.features for d in naive] == [d.features for d in batch]
    np.testing.assert_allclose([d.score for d in naive], [d.score for d in batch], atol=1e-5)
    assert [d.decision for d in naive] == [d.decision for d in batch]
    assert [[r.feature for r in d.reasons] for d in naive] == [
        [r.feature for r in d.reasons] for d in batch
    ]
    outcomes = {d.decision for d in naive}
    assert "approve" in outcomes and outcomes & {"review", "decline"}  # both paths exercised
    assert decider.stats.stage_s.keys() == {"features", "inference", "policy", "explain"}


def test_naive_decide_returns_a_review_case_only_for_flagged(served: ServingModel) -> None:
    store = memory_store()
    store.update_batch(stream(1000))
    decider = NaiveDecider(store, served)
    for tx in stream(1100)[1000:]:
        decision, case = decider.decide(tx, produced_at_ms=1)
        assert (case is None) == (decision.decision == "approve")
        assert decision.model_version == "v1" and decision.feature_set == FEATURE_SET_ID
        assert decision.latency_ms is not None and decision.latency_ms > 0
        if case is not None:
            assert case.case_id == tx.transaction_id and case.score == decision.score


class _Response:
    def __init__(self, payload: dict[str, list[Any]]) -> None:
        self.payload = payload

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        assert include_event_timestamps
        return self.payload


class _View:
    ttl = TERMINAL_RISK_TTL


class FakeFeastStore:
    """``get_online_features`` over a dict ``terminal_id -> (values, event timestamp)``."""

    def __init__(self, rows: dict[str, tuple[list[float], datetime]]) -> None:
        self.rows = rows
        self.calls = 0

    def get_feature_view(self, name: str) -> _View:
        return _View()

    def get_online_features(self, features: list[str], entity_rows: list[dict[str, str]]) -> Any:
        self.calls += 1
        ids = [r["terminal_id"] for r in entity_rows]
        out: dict[str, list[Any]] = {}
        for j, name in enumerate(TERMINAL_RISK_FEATURES):
            out[name] = [self.rows[t][0][j] if t in self.rows else None for t in ids]
            out[f"{name}__ts"] = [self.rows[t][1] if t in self.rows else None for t in ids]
        return _Response(out)


def test_sdk_profile_reader_applies_defaults_ttl_and_ageing() -> None:
    as_of = datetime(2026, 3, 10, 12, tzinfo=UTC)
    stored = [float(j) for j in range(len(TERMINAL_RISK_FEATURES))]
    stored[DAYS_SINCE_COLUMN] = 3.0
    store = FakeFeastStore(
        {
            "fresh": (stored, as_of - timedelta(days=1)),
            "stale": (stored, as_of - TERMINAL_RISK_TTL - timedelta(hours=1)),
        }
    )
    reader = SdkProfileReader(store)
    as_of_us = np.full(3, int(as_of.timestamp()) * 1_000_000, dtype=np.int64)

    served = reader.read_batch(["fresh", "unknown", "stale"], as_of_us)

    expected_fresh = np.array(stored, dtype=np.float32)
    expected_fresh[DAYS_SINCE_COLUMN] = 4.0  # stored 3 days, row written a day before as_of
    defaults = np.array(TERMINAL_RISK_DEFAULTS, dtype=np.float32)
    np.testing.assert_array_equal(served, np.vstack([expected_fresh, defaults, defaults]))
    assert served.dtype == np.float32 and store.calls == 1 == reader.calls
