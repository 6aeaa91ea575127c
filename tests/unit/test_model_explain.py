from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.explain import Explainer, humanize, reason_text
from tests.unit.test_model_synthetic import FEATURES, synthetic_table


@pytest.mark.unit
def test_reason_text_reads_like_an_analyst() -> None:
    assert humanize("terminal_fraud_rate_7d") == "7-day terminal fraud rate"
    assert humanize("hour_of_day") == "hour of day"
    assert reason_text("7-day terminal fraud rate", 0.31, 0.025) == (
        "7-day terminal fraud rate 0.31, ×12 the median"
    )
    assert reason_text("amount", 240.0, 100.0) == "amount 240, ×2.4 the median"
    assert reason_text("amount", 10.0, 100.0) == "amount 10, ×0.10 the median"
    assert reason_text("z", -2.5, 0.0) == "z -2.50 (median 0)"
    assert reason_text("rate", float("nan"), 0.1) == "rate missing"


@pytest.mark.unit
def test_top_reasons_come_from_tree_shap_in_batch() -> None:
    table = synthetic_table(days=8, per_day=300)
    x = table[FEATURES].to_numpy(np.float32)
    y = table["is_fraud"].to_numpy()
    params = {"objective": "binary", "verbose": -1, "deterministic": True, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=40)
    explainer = Explainer(booster, FEATURES, np.nanmedian(x, axis=0))
    flagged = x[np.argsort(-np.asarray(booster.predict(x)))[:25]]
    contributions = explainer.contributions(flagged)
    raw = booster.predict(flagged, raw_score=True)
    on_every_core = np.asarray(booster.predict(flagged, pred_contrib=True))
    bias = on_every_core[:, -1]
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, raw, rtol=1e-6, atol=1e-6)
    assert explainer.kernel is not None  # the C TreeSHAP: LightGBM's numbers, to rounding
    np.testing.assert_allclose(
        contributions, on_every_core[:, : len(FEATURES)], rtol=1e-9, atol=1e-12
    )
    explainer.kernel = None  # LightGBM's own, on the scorer's one thread
    np.testing.assert_array_equal(
        explainer.contributions(flagged), on_every_core[:, : len(FEATURES)]
    )

    reasons = explainer.explain(flagged)
    assert len(reasons) == 25
    for row, row_reasons in enumerate(reasons):
        assert 1 <= len(row_reasons) <= 3
        weights = [r.contribution for r in row_reasons]
        assert weights == sorted(weights, reverse=True)
        best = int(np.argmax(contributions[row]))
        assert row_reasons[0].feature == FEATURES[best]
        assert row_reasons[0].contribution == pytest.approx(contributions[row, best])
        assert row_reasons[0].text.startswith(humanize(FEATURES[best]))
    assert explainer.explain(x[:0]) == []


@pytest.mark.unit
def test_thread_count_must_be_positive() -> None:
    table = synthetic_table(days=2, per_day=100)
    x = table[FEATURES].to_numpy(np.float32)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(x, table["is_fraud"]), 5
    )
    with pytest.raises(ValueError, match="num_threads"):
        Explainer(booster, FEATURES, np.nanmedian(x, axis=0), num_threads=0)
