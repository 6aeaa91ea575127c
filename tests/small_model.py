"""A small served model on real feature rows, for unit tests of the scoring pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np

from features.bench import synthetic_stream
from features.definitions import FEATURE_INDEX, FEATURE_NAMES, FEATURE_SET_ID
from features.interface import InMemoryProfileReader
from features.realtime import InMemoryFeatureStore
from models.explain import Explainer
from models.export import to_onnx
from models.policy import ThresholdPolicy
from models.scoring import FeatureSpec, OnnxModel, make_session
from models.serving import ServingModel
from streams.events import Transaction

START = datetime(2026, 2, 1, tzinfo=UTC)
PROFILES: dict[str, Sequence[float]] = {
    f"T{t:06d}": [float(t % 5), *([0.1] * 14)] for t in range(0, 400, 3)
}


def stream(n: int) -> list[Transaction]:
    """The first ``n`` transactions of a fixed synthetic stream (300 cards, 400 terminals)."""
    return list(itertools.islice(synthetic_stream(300, 400, 20.0, START, seed=5), n))


def memory_store() -> InMemoryFeatureStore:
    return InMemoryFeatureStore(profiles=InMemoryProfileReader(PROFILES))


def small_served() -> ServingModel:
    """A small LightGBM on real feature rows, exported to ONNX, with a 10% review policy."""
    rows = memory_store().update_and_read_batch(stream(1500)).values
    rng = np.random.default_rng(3)
    amount = rows[:, FEATURE_INDEX["tx_amount"]]
    burst = rows[:, FEATURE_INDEX["card_tx_count_1h"]]
    logit = 0.02 * (amount - 60) + 0.8 * burst - 2.0 + rng.normal(0, 0.5, len(rows))
    labels = (logit > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 1},
        lgb.Dataset(rows, labels, feature_name=list(FEATURE_NAMES)),
        num_boost_round=30,
    )
    onnx = OnnxModel(
        make_session(to_onnx(booster)), FeatureSpec(FEATURE_NAMES, FEATURE_SET_ID), "v1"
    )
    scores = booster.predict(rows)
    policy = ThresholdPolicy(float(np.quantile(scores, 0.9)), float(np.quantile(scores, 0.97)), 0.1)
    explainer = Explainer(booster, FEATURE_NAMES, np.nanmedian(rows, axis=0))
    return ServingModel("v1", onnx, policy, explainer)
