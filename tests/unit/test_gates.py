"""Promotion gates: each gate with exact pass and fail cases, and the combined report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.gates import (
    Candidate,
    GateConfig,
    gate_average_precision,
    gate_data_checks,
    gate_onnx_parity,
    gate_precision_at_review,
    gate_reference_drift,
    run_gates,
)

pytestmark = pytest.mark.unit

CONFIG = GateConfig(min_labels=10, min_frauds=2, drift_min_rows=50)


# -- gate 1: data checks ------------------------------------------------------------------


def test_gate1_passes_with_enough_labels_and_both_classes() -> None:
    result = gate_data_checks(np.array([0] * 8 + [1] * 2), CONFIG)
    assert (result.number, result.name, result.passed, result.value) == (
        1,
        "data_checks",
        True,
        10.0,
    )


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ([0] * 7 + [1] * 2, "9 labelled rows"),  # one row short
        ([0] * 9 + [1] * 1, "1 fraud"),  # one fraud short
        ([1] * 12, "0 legit"),  # a single class
    ],
)
def test_gate1_fails(labels: list[int], why: str) -> None:
    result = gate_data_checks(np.array(labels), CONFIG)
    assert not result.passed
    assert why in result.detail
    assert result.line().startswith("gate 1 data_checks: FAIL")


# -- gate 2: ONNX parity ------------------------------------------------------------------


def test_gate2_parity_bounds() -> None:
    config = GateConfig(parity_tolerance=1e-5)
    assert gate_onnx_parity(1e-5, config).passed
    assert gate_onnx_parity(0.0, config).passed
    assert not gate_onnx_parity(1.1e-5, config).passed
    assert not gate_onnx_parity(math.nan, config).passed


# -- gate 3: average precision vs champion ------------------------------------------------

LABELS = np.array([1, 0, 1, 0, 0, 0])
PERFECT = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.4])  # AP 1.0
WORSE = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4])  # AP (1 + 2/6) / 2 = 0.6667


def test_gate3_challenger_better_passes_with_exact_numbers() -> None:
    result = gate_average_precision(LABELS, WORSE, PERFECT, GateConfig(ap_margin=0.0))
    assert result.passed
    assert result.value == pytest.approx(1.0)
    assert result.bound == pytest.approx(2 / 3)


def test_gate3_equal_ap_passes_at_zero_margin_and_fails_with_a_margin() -> None:
    assert gate_average_precision(LABELS, WORSE, WORSE, GateConfig(ap_margin=0.0)).passed
    assert not gate_average_precision(LABELS, WORSE, WORSE, GateConfig(ap_margin=0.01)).passed


def test_gate3_worse_challenger_fails_and_negative_margin_tolerates() -> None:
    assert not gate_average_precision(LABELS, PERFECT, WORSE, GateConfig()).passed
    tolerant = GateConfig(ap_margin=-0.34)  # 1.0 - 0.34 = 0.66 <= 0.6667
    assert gate_average_precision(LABELS, PERFECT, WORSE, tolerant).passed


def test_gate3_single_class_window_fails() -> None:
    labels = np.zeros(6, dtype=np.int8)
    assert not gate_average_precision(labels, PERFECT, PERFECT, GateConfig()).passed


# -- gate 4: precision at the review threshold --------------------------------------------


def test_gate4_precision_at_each_models_threshold() -> None:
    # champion flags rows 0, 1 (scores >= 0.8): precision 1/2
    # challenger flags rows 0, 2 (scores >= 0.8): precision 2/2
    result = gate_precision_at_review(LABELS, WORSE, 0.8, PERFECT, 0.8, GateConfig())
    assert result.passed and result.value == 1.0 and result.bound == 0.5
    reverse = gate_precision_at_review(LABELS, PERFECT, 0.8, WORSE, 0.8, GateConfig())
    assert not reverse.passed and reverse.value == 0.5 and reverse.bound == 1.0


def test_gate4_holds_the_champion_to_the_challengers_volume() -> None:
    # a burst: 4 frauds; the champion flags only its top row (precise, but misses 3)
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    champion = np.array([0.9, 0.1, 0.2, 0.3, 0.8, 0.7, 0.4, 0.05])
    challenger = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.1])
    result = gate_precision_at_review(labels, champion, 0.85, challenger, 0.6, GateConfig())
    # challenger: 3 of its 4 flagged; the champion's top 4 hold 1 fraud (1.0 at its own)
    assert result.passed and result.value == 0.75 and result.bound == 0.25
    assert "on its top 4 (1.0000 at its 0.85)" in result.detail
    worse = gate_precision_at_review(labels, challenger, 0.6, champion, 0.3, GateConfig())
    assert not worse.passed and worse.value == 0.4 and worse.bound == 0.8  # 5 flagged


def test_gate4_tolerance_and_flagging_nothing() -> None:
    tolerant = GateConfig(precision_tolerance=0.5)
    assert gate_precision_at_review(LABELS, PERFECT, 0.8, WORSE, 0.8, tolerant).passed
    # a challenger that flags nothing cannot pass, whatever the champion did
    nothing = gate_precision_at_review(LABELS, WORSE, 0.99, PERFECT, 0.95, GateConfig())
    assert not nothing.passed and "0 flagged" in nothing.detail


# -- gate 5: the challenger's reference against current traffic ---------------------------


def test_gate5_reference_like_today_passes_and_stale_reference_fails() -> None:
    rng = np.random.default_rng(5)
    today = rng.normal(0.0, 1.0, size=(400, 3))
    fresh = rng.normal(0.0, 1.0, size=(400, 3))
    stale = fresh.copy()
    stale[:, 1] += 1.0
    passed = gate_reference_drift(fresh, today, CONFIG, ["a", "b", "c"])
    failed = gate_reference_drift(stale, today, CONFIG, ["a", "b", "c"])
    assert passed.passed and passed.value == 0.0
    assert not failed.passed and failed.value == 1.0 and failed.detail.endswith(": b")


def test_gate5_too_little_traffic_fails_closed() -> None:
    rng = np.random.default_rng(6)
    result = gate_reference_drift(rng.normal(size=(400, 2)), rng.normal(size=(10, 2)), CONFIG)
    assert not result.passed and "too few rows" in result.detail


# -- the report -----------------------------------------------------------------------------


def _candidate(challenger: np.ndarray, diff: float = 0.0) -> Candidate:
    rng = np.random.default_rng(7)
    labels = np.tile(LABELS, 5)
    return Candidate(
        labels=labels,
        champion_scores=np.tile(WORSE, 5),
        champion_threshold=0.8,
        challenger_scores=np.tile(challenger, 5),
        challenger_threshold=0.8,
        max_abs_diff=diff,
        challenger_reference=rng.normal(size=(300, 2)),
        current_window=rng.normal(size=(300, 2)),
    )


def test_all_gates_pass_for_a_better_challenger() -> None:
    report = run_gates(_candidate(PERFECT), CONFIG)
    assert report.passed
    assert [r.number for r in report.results] == [1, 2, 3, 4, 5]
    assert report.failures() == []
    assert report.as_dict()["passed"] is True


def test_a_worse_challenger_is_rejected_with_the_failed_gates_named() -> None:
    report = run_gates(_candidate(WORSE[::-1].copy(), diff=1.0), CONFIG)
    assert not report.passed
    failed = [line.split(":")[0] for line in report.failures()]
    assert failed == [
        "gate 2 onnx_parity",
        "gate 3 average_precision",
        "gate 4 precision_at_review",
    ]
