"""Drift detection: multiple-testing corrections (exact) and alibi-detect on known shifts."""

from __future__ import annotations

import numpy as np
import pytest

from features.definitions import FEATURE_INDEX, FEATURE_NAMES, FEATURES
from models.drift import DriftDetector, DriftError, categorical_indices, significant

pytestmark = pytest.mark.unit


def test_bonferroni_rejects_below_alpha_over_n() -> None:
    p = np.array([0.001, 0.012, 0.013, 0.5])  # alpha / n = 0.0125
    assert significant(p, 0.05, "bonferroni").tolist() == [True, True, False, False]


def test_fdr_benjamini_hochberg_step_up() -> None:
    # sorted p: 0.01 <= 0.0125, 0.02 <= 0.025, 0.035 <= 0.0375, 0.5 > 0.05 -> first 3 rejected
    p = np.array([0.035, 0.01, 0.5, 0.02])
    assert significant(p, 0.05, "fdr").tolist() == [True, True, False, True]
    # step-up: 0.03 fails its own bound (0.025) but 0.035 passes 0.0375, so both go
    p = np.array([0.01, 0.03, 0.035, 0.9])
    assert significant(p, 0.05, "fdr").tolist() == [True, True, True, False]
    assert significant(np.array([0.2, 0.3]), 0.05, "fdr").tolist() == [False, False]


def test_unknown_correction_is_an_error() -> None:
    with pytest.raises(DriftError):
        significant(np.array([0.1]), 0.05, "holm")  # type: ignore[arg-type]


def test_categorical_features_are_the_codes_and_flags() -> None:
    names = [FEATURE_NAMES[i] for i in categorical_indices(FEATURES)]
    assert names == [
        "tx_is_weekend",
        "tx_is_night",
        "tx_channel_code",
        "tx_merchant_category_code",
        "card_is_new",
        "terminal_is_new_for_card",
    ]


def _traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(50.0, 10.0, size=(n, len(FEATURE_NAMES)))
    for i in categorical_indices(FEATURES):
        x[:, i] = rng.integers(0, 4, size=n)
    return x


def test_same_distribution_does_not_drift() -> None:
    rng = np.random.default_rng(101)  # a fixed seed; ~5% of seeds give a false alarm
    detector = DriftDetector.for_features(_traffic(rng, 2000), min_rows=100)
    report = detector.check(_traffic(rng, 2000))
    assert not report.drifted
    assert report.drifted_features == []
    assert len(report.features) == len(FEATURE_NAMES)


def test_shifted_numeric_and_categorical_features_are_named() -> None:
    rng = np.random.default_rng(2)
    reference = _traffic(rng, 2000)
    window = _traffic(rng, 2000)
    window[:, FEATURE_INDEX["tx_amount"]] += 5.0  # half a standard deviation
    window[:, FEATURE_INDEX["tx_channel_code"]] = 1.0  # every row on one channel
    report = DriftDetector.for_features(reference, min_rows=100, correction="fdr").check(window)
    assert report.drifted
    assert sorted(report.drifted_features) == ["tx_amount", "tx_channel_code"]
    by_name = {f.name: f for f in report.features}
    assert by_name["tx_channel_code"].kind == "categorical"
    assert by_name["tx_amount"].kind == "numeric"
    assert report.details()["drifted_features"] == report.drifted_features


def test_score_drift_uses_the_prediction_distribution() -> None:
    rng = np.random.default_rng(3)
    reference = _traffic(rng, 1000)
    detector = DriftDetector.for_features(
        reference, min_rows=100, reference_scores=rng.beta(1, 50, 1000)
    )
    same = detector.check(_traffic(rng, 1000), rng.beta(1, 50, 1000))
    shifted = detector.check(_traffic(rng, 1000), rng.beta(1, 5, 1000))
    assert not same.score_drifted
    assert shifted.score_drifted and shifted.any_drift and not shifted.drifted
    assert shifted.score_p_value is not None and shifted.score_p_value < 1e-6


def test_too_few_rows_is_a_typed_error() -> None:
    rng = np.random.default_rng(4)
    detector = DriftDetector.for_features(_traffic(rng, 500), min_rows=200)
    with pytest.raises(DriftError, match="too few rows"):
        detector.check(_traffic(rng, 199))


def test_effect_size_floor_and_ignored_features() -> None:
    rng = np.random.default_rng(8)
    reference = _traffic(rng, 4000)
    window = _traffic(rng, 4000)
    window[:, FEATURE_INDEX["tx_amount"]] += 1.5  # significant, but KS distance ~0.06
    window[:, FEATURE_INDEX["tx_hour"]] += 10.0  # a big shift in an ignored feature
    strict = DriftDetector.for_features(reference, min_rows=100).check(window)
    assert strict.drifted_features == ["tx_amount", "tx_hour"]  # feature order
    tolerant = DriftDetector.for_features(
        reference, min_rows=100, min_effect=0.15, ignore=("tx_hour",)
    ).check(window)
    assert tolerant.drifted_features == []
    by_name = {f.name: f for f in tolerant.features}
    assert by_name["tx_hour"].ignored and by_name["tx_hour"].effect > 0.3
    assert 0.03 < by_name["tx_amount"].effect < 0.15


def test_cramers_v_of_a_categorical_shift() -> None:
    from models.drift import effect_sizes

    # chi2 = 90 over 100 + 100 rows -> V = sqrt(90 / 200) = 0.6708
    effect = effect_sizes(np.array([0.2, 90.0]), [1], 100, 100)
    assert effect[0] == pytest.approx(0.2)
    assert effect[1] == pytest.approx(np.sqrt(0.45))
