"""Refitting a challenger's thresholds on recent served traffic after a pattern switch."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ModelError
from models.pipeline import TrainingOutcome
from models.policy import ThresholdPolicy, choose_policy, refit_policy
from models.registry import ModelBundle
from models.scoring import FeatureSpec
from services.retrainer.challenger import ChallengerRun
from services.retrainer.refit import RefitConfig, refit_run

pytestmark = pytest.mark.unit
DAY_NS = 86_400 * 10**9


def _day(rng: np.random.Generator, *, old: int, new: int, n: int = 1000) -> tuple:
    """One day's scores and labels: legitimate traffic scores low (one row a day among the
    new pattern's scores), the old pattern's frauds high, the new pattern's in between."""
    legit = np.concatenate([rng.beta(1, 30, n - old - new - 1), rng.uniform(0.4, 0.6, 1)])
    scores = np.concatenate([legit, rng.uniform(0.7, 1.0, old), rng.uniform(0.4, 0.6, new)])
    labels = np.concatenate([np.zeros(len(legit)), np.ones(old + new)]).astype(np.int8)
    pattern = np.concatenate([np.zeros(len(legit) + old), np.ones(new)]).astype(bool)
    return scores, labels, pattern


def _days(seed: int, count: int, *, old: int, new: int) -> tuple:
    rng = np.random.default_rng(seed)
    parts = [_day(rng, old=old, new=new) for _ in range(count)]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _validation_policy() -> ThresholdPolicy:
    scores, labels, _ = _days(1, 10, old=5, new=0)  # before the switch
    return choose_policy(scores, labels, review_rate=0.005, days=10)


def _bands(policy: ThresholdPolicy, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outcomes = policy.decide(scores)
    return outcomes == "review", outcomes == "decline"


def test_refit_flags_most_new_pattern_frauds_within_the_review_capacity() -> None:
    trained = _validation_policy()
    capacity = trained.basis["review_cases_per_day"]
    assert capacity == pytest.approx(5.0)
    # after the switch: 20 new-pattern frauds a day, four times what analysts can review
    scores, labels, pattern = _days(2, 3, old=2, new=20)
    old_flagged = int(np.sum(trained.flagged(scores) & pattern))
    policy = refit_policy(
        scores, labels, days=3, cases_per_day=capacity, replaces=trained, window={"rows": 3000}
    )
    reviewed, declined = _bands(policy, scores)
    new_flagged = int(np.sum(policy.flagged(scores) & pattern))
    assert old_flagged == 0
    assert new_flagged >= 0.5 * pattern.sum()
    assert int(reviewed.sum()) == 15  # 5 a day for 3 days: the review band, no more
    assert labels[declined].mean() >= 0.9  # the replaced policy's decline target
    basis = policy.basis
    assert basis["review_cases_per_day"] == pytest.approx(5.0)
    assert basis["decline_cases_per_day"] == pytest.approx(declined.sum() / 3)
    assert basis["decline_precision_reached"] is True
    assert basis["review_capacity_per_day"] == capacity
    assert basis["fitted_on"] == "recent labelled served traffic"
    assert basis["window"] == {"rows": 3000}
    assert basis["replaces"]["review_threshold"] == trained.review_threshold
    assert ThresholdPolicy.from_json(policy.to_json()) == policy


def test_declines_in_capacity_keep_the_training_rule_and_miss_the_burst() -> None:
    trained = _validation_policy()
    scores, labels, pattern = _days(2, 3, old=2, new=20)
    policy = refit_policy(
        scores,
        labels,
        days=3,
        cases_per_day=5.0,
        replaces=trained,
        window={},
        declines_in_capacity=True,
    )
    _, declined = _bands(policy, scores)
    assert int(np.sum(policy.flagged(scores))) == 15  # review and decline together
    assert int(declined.sum()) <= 7  # at most half of them declined
    assert int(np.sum(policy.flagged(scores) & pattern)) <= 15 < 0.5 * pattern.sum()


def test_refit_keeps_the_capacity_when_the_volume_changes() -> None:
    trained = _validation_policy()
    scores, labels, _ = _days(3, 2, old=2, new=4)
    # the same 2,000 rows said to span 4 days: half the volume, twice the cases
    policy = refit_policy(scores, labels, days=4, cases_per_day=5.0, replaces=trained, window={})
    reviewed, _ = _bands(policy, scores)
    assert int(reviewed.sum()) == 20


def test_without_a_precise_decline_the_capacity_is_all_review() -> None:
    trained = _validation_policy()
    scores = np.linspace(0, 1, 3000)
    labels = (np.arange(3000) % 3 == 0).astype(np.int8)  # a third fraud at every score
    policy = refit_policy(scores, labels, days=3, cases_per_day=5.0, replaces=trained, window={})
    assert policy.decline_threshold == 1.0
    assert policy.basis["decline_precision_reached"] is False
    assert int(np.sum(policy.flagged(scores))) == 15


def test_refit_refuses_an_empty_window() -> None:
    with pytest.raises(ModelError):
        refit_policy(
            np.zeros(0),
            np.zeros(0),
            days=1,
            cases_per_day=5,
            replaces=_validation_policy(),
            window={},
        )


def _run(trained: ThresholdPolicy, *, young_frauds: int = 30) -> tuple[ChallengerRun, np.ndarray]:
    """A challenger run whose evaluation window is 3 complete days and a young part
    holding only early labels (all fraud)."""
    scores, labels, pattern = _days(4, 3, old=2, new=4)
    start = np.datetime64("2026-01-10T00:00:00", "ns")
    times = start + (np.arange(len(scores)) * (3 * DAY_NS // len(scores))).astype("timedelta64[ns]")
    young = np.full(young_frauds, 0.35)
    bundle = ModelBundle(
        onnx=b"",
        model_text="",
        spec=FeatureSpec(("f",), "set"),
        metrics={},
        policy=trained,
        reference=np.zeros((1, 1)),
        fingerprint="x",
        card={"policy": {}},
    )
    outcome = TrainingOutcome(bundle, {}, None, 0.0, np.zeros(0, bool), np.zeros(0))  # type: ignore[arg-type]
    run = ChallengerRun(
        outcome,
        np.zeros((len(scores) + young_frauds, 1), np.float32),
        np.concatenate([labels, np.ones(young_frauds, np.int8)]),
        np.concatenate([scores, young]),
        eval_times=np.concatenate(
            [times, np.full(young_frauds, times[-1] + np.timedelta64(1, "h"))]
        ),
        eval_complete=np.concatenate([np.ones(len(scores), bool), np.zeros(young_frauds, bool)]),
    )
    return run, np.concatenate([pattern, np.zeros(young_frauds, bool)])


def test_refit_run_serves_a_policy_fitted_on_the_complete_recent_rows() -> None:
    trained = _validation_policy()
    run, pattern = _run(trained)
    done = refit_run(run, RefitConfig())
    assert done.refitted
    policy = done.run.outcome.bundle.policy
    window = policy.basis["window"]
    assert window["rows"] == 3000  # the young, early-labelled rows are left out
    assert window["days"] == pytest.approx(3.0)
    assert window["frauds"] == 18
    assert policy.basis["decline_precision_reached"] is True
    complete = run.eval_complete
    reviewed, _ = _bands(policy, run.eval_scores[complete])
    flagged = policy.flagged(run.eval_scores[complete])
    assert reviewed.sum() == 15
    assert (flagged & pattern[complete]).sum() >= 6
    assert done.run.outcome.bundle.card["policy"]["review_threshold"] == policy.review_threshold
    assert "3000 recent labelled served rows" in done.summary
    details = done.details()["policy"]
    assert details["refitted"] is True and details["basis"] == policy.basis
    assert run.outcome.bundle.policy == trained  # the run given is left as it was


def test_refit_run_on_the_last_days_only_and_off() -> None:
    trained = _validation_policy()
    run, _ = _run(trained)
    last_day = refit_run(run, RefitConfig(days=1.0))
    assert last_day.policy.basis["window"]["rows"] == pytest.approx(1000, abs=1)
    last = run.eval_scores[run.eval_complete][-1000:]
    assert int(np.sum(_bands(last_day.policy, last)[0])) == 5
    off = refit_run(run, RefitConfig(enabled=False))
    assert not off.refitted and off.policy == trained
    assert "refit off" in off.summary


def test_the_freshest_traffic_sizes_the_review_band() -> None:
    trained = _validation_policy()
    scores, labels, _ = _days(2, 3, old=2, new=20)
    # since the labelled rows, legitimate scores drifted up: the same band would hold more
    fresh = np.random.default_rng(5).uniform(0.0, 0.35, 2000)
    policy = refit_policy(
        scores,
        labels,
        days=3,
        cases_per_day=5.0,
        replaces=trained,
        window={},
        traffic=(fresh, 2.0),
    )
    reviewed, _ = _bands(policy, fresh)
    assert int(reviewed.sum()) == 10  # 5 a day over the 2 fresh days
    sized = policy.basis["review_band_sized_on"]
    assert sized["rows"] == 2000 and sized["review_cases_per_day"] == pytest.approx(5.0)
    stale = refit_policy(scores, labels, days=3, cases_per_day=5.0, replaces=trained, window={})
    assert int(np.sum(_bands(stale, fresh)[0])) > 10
    assert policy.decline_threshold == stale.decline_threshold  # declines need the labels


def test_recent_traffic_days_in_served_time() -> None:
    from services.retrainer.refit import RecentTraffic

    # 101 rows a wall second apart, replayed 8,640 times faster: 10 served days... and a row
    times = np.arange(101, dtype=np.int64) * 1_000_000
    traffic = RecentTraffic(np.zeros((101, 1), np.float32), times)
    assert traffic.days(8640.0) == pytest.approx(101 / 100 * 100 * 8640 / 86_400)
    assert RecentTraffic(np.zeros((1, 1)), times[:1]).days(1.0) == 0.0


def test_the_served_logs_latest_rows_are_by_event_time_not_arrival() -> None:
    from datetime import UTC, datetime, timedelta

    from services.retrainer.served import ServedLog
    from streams.events import Decision

    def decision(day: int) -> Decision:
        return Decision(
            transaction_id=f"t{day}",
            card_id="c",
            terminal_id="t",
            event_time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
            amount=1.0,
            score=0.1,
            decision="approve",
            model_version="v0001",
            feature_set="x",
            features=[float(day)],
        )

    log = ServedLog(["f"], capacity=100)
    log.append([decision(d) for d in (5, 6, 7)])  # one partition's backlog first
    log.append([decision(d) for d in (1, 8, 2)])  # then another's
    features, times = log.latest(3)
    assert features[:, 0].tolist() == [6.0, 7.0, 8.0]
    assert np.all(np.diff(times) > 0)
