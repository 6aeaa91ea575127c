from __future__ import annotations

import numpy as np
import pytest

from models.metrics import calibration, card_precision_at_k, precision_recall_at


@pytest.mark.unit
def test_card_precision_at_k_matches_a_hand_computed_example() -> None:
    # day 0: cards A(0.9, fraud) B(0.8 max of 0.2/0.8, legit) C(0.7, fraud via its 2nd tx)
    #        D(0.1, fraud).  top-2 = A, B -> 1 fraud / 2 = 0.5
    # day 1: A(0.95 fraud) C(0.6 legit) E(0.5 fraud). top-2 = A, C -> 1/2 = 0.5
    #        ignoring cards caught earlier (A): top-2 = C, E -> 1/2 = 0.5
    # day 2: B(0.99 fraud) E(0.3 legit) F(0.2 legit). top-2 = B, E -> 1/2
    days = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    cards = ["A", "B", "B", "C", "C", "D", "A", "C", "E", "B", "E", "F"]
    scores = [0.9, 0.2, 0.8, 0.7, 0.05, 0.1, 0.95, 0.6, 0.5, 0.99, 0.3, 0.2]
    labels = [1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0]
    mean, per_day = card_precision_at_k(days, cards, scores, labels, k=2)
    assert per_day == [0.5, 0.5, 0.5]
    assert mean == pytest.approx(0.5)

    mean, per_day = card_precision_at_k(days, cards, scores, labels, k=3)
    # day 0 top-3 = A, B, C -> A and C fraud = 2/3; day 1: A, C, E -> 2/3; day 2: B -> 1/3
    assert per_day == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    assert mean == pytest.approx(5 / 9)


@pytest.mark.unit
def test_handbook_style_ignores_cards_caught_on_earlier_days() -> None:
    days = [0, 0, 1, 1, 1]
    cards = ["A", "B", "A", "B", "C"]
    scores = [0.9, 0.1, 0.9, 0.8, 0.7]
    labels = [1, 0, 1, 0, 1]
    plain, plain_days = card_precision_at_k(days, cards, scores, labels, k=1)
    handbook, handbook_days = card_precision_at_k(
        days, cards, scores, labels, k=1, exclude_detected=True
    )
    assert plain_days == [1.0, 1.0]  # A caught both days
    assert handbook_days == [1.0, 0.0]  # day 1 without A: B ranks first, legit
    assert (plain, handbook) == (1.0, 0.5)


@pytest.mark.unit
def test_k_larger_than_cards_divides_by_k_as_the_handbook_does() -> None:
    mean, _ = card_precision_at_k([0, 0], ["A", "B"], [0.9, 0.8], [1, 1], k=4)
    assert mean == 0.5


@pytest.mark.unit
def test_precision_recall_at_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.4, 0.3, 0.1])
    labels = np.array([1, 0, 1, 0, 0])
    result = precision_recall_at(scores, labels, 0.5)
    assert result == {"threshold": 0.5, "precision": 0.5, "recall": 0.5, "flagged_rate": 0.4}


@pytest.mark.unit
def test_calibration_of_a_perfectly_calibrated_constant() -> None:
    scores = np.full(1000, 0.1)
    labels = np.r_[np.ones(100), np.zeros(900)]
    result = calibration(scores, labels, bins=1)
    assert result["ece"] == pytest.approx(0.0)
    assert result["brier"] == pytest.approx(0.1 * 0.81 + 0.9 * 0.01)
