"""The C TreeSHAP kernel against LightGBM's ``pred_contrib``, on models trained here."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from models.tree_shap import TreeShap

pytestmark = pytest.mark.unit


def _data(seed: int, rows: int = 3_000, missing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    x[:, 3] = rng.integers(0, 4, rows)  # few distinct values: exact thresholds, ties
    x[:, 5] = np.where(rng.random(rows) < 0.3, 0.0, x[:, 5])  # many zeros
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    logit = 1.5 * x[:, 0] - x[:, 1] * x[:, 2] + 0.8 * (x[:, 3] > 1) + np.nan_to_num(x[:, 5])
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def _booster(x: np.ndarray, y: np.ndarray, rounds: int = 30, **params: Any) -> lgb.Booster:
    """Trained, then read back from its text as the scorer loads a version's model.txt (a
    threshold LightGBM holds as +inf in memory is written, and read back, as 1e300)."""
    base = {"objective": "binary", "verbose": -1, "deterministic": True, "num_threads": 1}
    trained = lgb.train({**base, **params}, lgb.Dataset(x, y), num_boost_round=rounds)
    return lgb.Booster(model_str=trained.model_to_string())


def _probe_rows(x: np.ndarray, booster: lgb.Booster, seed: int) -> np.ndarray:
    """Training rows, plus rows sitting exactly on split thresholds and odd values."""
    rng = np.random.default_rng(seed)
    rows = [x[:200]]
    thresholds = [
        t["tree_structure"].get("threshold")
        for t in booster.dump_model()["tree_info"]
        if "threshold" in t["tree_structure"]
    ]
    on_split = x[200 : 200 + len(thresholds)].copy()
    for i, t in enumerate(thresholds):
        on_split[i, rng.integers(0, x.shape[1])] = t
    rows.append(on_split)
    odd = x[:40].copy()
    odd[::4, 0] = np.nan
    odd[1::4, 5] = 0.0
    odd[2::4, 1] = np.inf
    odd[3::4, 2] = -np.inf
    rows.append(odd)
    return np.concatenate(rows).astype(np.float32)


MODELS: dict[str, tuple[dict[str, Any], float]] = {
    "plain": ({}, 0.0),
    "missing as NaN": ({}, 0.1),
    "zero as missing": ({"zero_as_missing": True}, 0.05),
    "missing ignored": ({"use_missing": False}, 0.0),
    "deep trees": ({"num_leaves": 127, "min_data_in_leaf": 2}, 0.02),
    "shallow": ({"num_leaves": 4}, 0.0),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_kernel_gives_lightgbms_contributions(name: str) -> None:
    params, missing = MODELS[name]
    x, y = _data(seed=len(name), missing=missing)
    booster = _booster(x, y, **params)
    rows = _probe_rows(x, booster, seed=1)
    expected = np.asarray(booster.predict(rows, pred_contrib=True))[:, :-1]
    for budget in (0, 64 * 1024, 64 * 1024 * 1024):  # no tables, some, all of them
        kernel = TreeShap.of(booster, budget_bytes=budget)
        assert kernel is not None
        np.testing.assert_allclose(kernel.contributions(rows), expected, rtol=1e-9, atol=1e-12)
    assert TreeShap.of(booster, budget_bytes=0).tabled_leaves == 0  # type: ignore[union-attr]


def test_a_large_budget_tables_every_leaf_and_the_default_bounds_it() -> None:
    x, y = _data(seed=3)
    booster = _booster(x, y, num_leaves=63, min_data_in_leaf=2)
    everything = TreeShap.of(booster, budget_bytes=1 << 40)
    assert everything is not None and everything.tabled_leaves == everything.leaves
    small = TreeShap.of(booster, budget_bytes=32 * 1024)
    assert small is not None and 0 < small.tabled_leaves < small.leaves
    assert small._table.nbytes <= 32 * 1024


def test_single_leaf_trees_and_empty_batches() -> None:
    x, y = _data(seed=4, rows=200)
    booster = _booster(x, y, rounds=5, min_gain_to_split=1e9)  # no split worth making
    kernel = TreeShap.of(booster)
    assert kernel is not None and kernel.leaves == 0
    rows = x[:5].astype(np.float32)
    expected = np.asarray(booster.predict(rows, pred_contrib=True))[:, :-1]
    np.testing.assert_array_equal(kernel.contributions(rows), expected)
    assert kernel.contributions(rows[:0]).shape == (0, 8)


def test_categorical_splits_are_left_to_lightgbm() -> None:
    x, y = _data(seed=5)
    x[:, 3] = np.abs(x[:, 3])
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1},
        lgb.Dataset(x, y, categorical_feature=[3]),
        num_boost_round=20,
    )
    assert '"decision_type": "=="' in str(booster.dump_model()).replace("'", '"')
    assert TreeShap.of(booster) is None


def test_rows_of_the_wrong_width_are_refused() -> None:
    x, y = _data(seed=6, rows=300)
    kernel = TreeShap.of(_booster(x, y, rounds=3))
    assert kernel is not None
    with pytest.raises(ValueError, match="8 features"):
        kernel.contributions(x[:2, :7])
