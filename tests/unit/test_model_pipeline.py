from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError, SplitError
from models.export import PARITY_TOLERANCE
from models.pipeline import TrainConfig, train_from_table
from tests.unit.test_model_synthetic import FEATURES, synthetic_table

CONFIG = TrainConfig(train_days=14, delay_days=3, test_days=5, seed=7, reference_rows=300)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return synthetic_table(days=24, per_day=400, seed=1)


@pytest.mark.unit
def test_training_produces_a_parity_checked_bundle_with_test_metrics(table: pd.DataFrame) -> None:
    outcome = train_from_table(
        table, FEATURES, "fs-test", config=CONFIG, source="synthetic", fingerprint="abc"
    )
    metrics = outcome.metrics
    assert metrics["rows"] == int((table["event_time"] >= outcome.windows.test_start).sum())
    assert metrics["roc_auc"] > 0.75  # the label depends on two features; a model finds it
    assert 0.0 <= metrics["card_precision_at_100"] <= 1.0
    assert len(metrics["card_precision_at_100_per_day"]) == 5
    assert metrics["onnx_max_abs_diff"] <= PARITY_TOLERANCE
    bundle = outcome.bundle
    assert bundle.spec.feature_names == tuple(FEATURES)
    assert bundle.reference.shape == (300, len(FEATURES))
    assert bundle.reference.dtype == np.float32
    assert bundle.policy.decline_threshold >= bundle.policy.review_threshold
    assert bundle.pr_curve_png.startswith(b"\x89PNG")
    assert "card precision@100" in bundle.card_markdown
    assert bundle.card["windows"]["train_days"] == 14


@pytest.mark.unit
def test_training_is_deterministic_by_seed(table: pd.DataFrame) -> None:
    small = table[table["event_time"] < table["event_time"].min() + np.timedelta64(20, "D")]
    config = TrainConfig(train_days=10, delay_days=2, test_days=4, seed=11, reference_rows=50)
    first = train_from_table(small, FEATURES, "fs", config=config, source="s", fingerprint="f")
    second = train_from_table(small, FEATURES, "fs", config=config, source="s", fingerprint="f")
    assert first.bundle.model_text == second.bundle.model_text
    assert first.bundle.onnx == second.bundle.onnx


@pytest.mark.unit
def test_tuning_runs_time_ordered_trials(table: pd.DataFrame) -> None:
    config = TrainConfig(train_days=14, delay_days=3, test_days=5, seed=7, tune_trials=2)
    outcome = train_from_table(table, FEATURES, "fs", config=config, source="s", fingerprint="f")
    trials = outcome.bundle.card["tuning_trials"]
    assert len(trials) == 2
    assert all(0.0 < t["validation_ap"] <= 1.0 for t in trials)


@pytest.mark.unit
def test_single_class_test_window_is_a_clear_error(table: pd.DataFrame) -> None:
    clean = table.copy()
    clean.loc[
        clean["event_time"] >= clean["event_time"].max() - np.timedelta64(5, "D"), "is_fraud"
    ] = 0
    with pytest.raises(SplitError, match=r"test window .* single class"):
        train_from_table(clean, FEATURES, "fs", config=CONFIG, source="s", fingerprint="f")


@pytest.mark.unit
def test_missing_feature_column_is_named(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"lacks feature column.*not_there"):
        train_from_table(
            table, [*FEATURES, "not_there"], "fs", config=CONFIG, source="s", fingerprint="f"
        )
