from __future__ import annotations

import numpy as np
import pytest

from models.errors import ModelError
from models.policy import ThresholdPolicy, choose_policy


@pytest.mark.unit
def test_review_threshold_flags_the_target_share_of_validation_traffic() -> None:
    scores = np.linspace(0.0, 0.999, 1000)
    labels = (scores > 0.99).astype(int)  # the top 9 rows are fraud
    policy = choose_policy(scores, labels, review_rate=0.02, days=2)
    assert policy.review_threshold == pytest.approx(scores[-20])
    assert int(np.sum(scores >= policy.review_threshold)) == 20
    assert policy.basis["review_cases_per_day"] == 10.0
    # lowest threshold whose precision reaches 0.9: top 10 rows hold 9 frauds
    assert policy.decline_threshold == pytest.approx(scores[-10])
    assert policy.basis["decline_precision_reached"] is True


@pytest.mark.unit
def test_cases_per_day_sets_the_review_rate() -> None:
    scores = np.linspace(0, 1, 7000)
    labels = np.zeros(7000, dtype=int)
    labels[-3:] = 1
    policy = choose_policy(scores, labels, cases_per_day=10, days=7)
    assert policy.review_rate == pytest.approx(70 / 7000)
    assert policy.basis["decline_precision_reached"] is False
    assert policy.decline_threshold == 1.0


@pytest.mark.unit
def test_decide_maps_scores_to_outcomes_and_round_trips() -> None:
    policy = ThresholdPolicy(review_threshold=0.3, decline_threshold=0.8, review_rate=0.01)
    outcomes = policy.decide(np.array([0.1, 0.3, 0.5, 0.8, 0.95]))
    assert outcomes.tolist() == ["approve", "review", "review", "decline", "decline"]
    assert policy.flagged(np.array([0.1, 0.31])).tolist() == [False, True]
    assert ThresholdPolicy.from_json(policy.to_json()) == policy


@pytest.mark.unit
def test_bad_review_rate_is_refused() -> None:
    with pytest.raises(ModelError, match="review rate"):
        choose_policy(np.array([0.1, 0.2]), np.array([0, 1]), review_rate=0.0)


@pytest.mark.unit
def test_a_precise_model_leaves_half_of_the_review_capacity_to_analysts() -> None:
    scores = np.linspace(0.0, 0.999, 1000)
    labels = (scores > 0.95).astype(int)  # the top 50 rows are fraud: every flagged row
    policy = choose_policy(scores, labels, review_rate=0.02)
    outcomes = policy.decide(scores)
    assert int(np.sum(outcomes == "decline")) == 10  # half of the 20 flagged
    assert int(np.sum(outcomes == "review")) == 10
    assert policy.basis["decline_precision_reached"] is True
