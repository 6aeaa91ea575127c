"""The demo dashboard's rendering, story timeline and summary numbers (no I/O)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.demo.dashboard import (
    Frame,
    drift_p_values,
    event_line,
    serving_versions,
    story_state,
)
from services.demo.runner import render_text
from services.demo.scrape import MetricsSnapshot
from services.demo.summary import average_precision, quality_after_switch, summarize, summary_table
from services.demo.watch import CARD_TESTING, PatternStats, Served, TopicView
from streams.events import ModelEvent

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(kind: str, version: str, previous: str | None = None, **details: object) -> ModelEvent:
    reasons = [f"gate {n} ok" for n in range(1, 6)] if kind == "promoted" else []
    return ModelEvent(
        kind=kind,  # type: ignore[arg-type]
        model_version=version,
        at=AT,
        previous_version=previous,
        reasons=reasons,
        details=details,
    )


STORY = [
    (-20.0, _event("registered", "v1")),
    (-20.0, _event("promoted", "v1")),
    (
        130.0,
        _event(
            "drift_report",
            "v1",
            drifted=True,
            drifted_features=["amount_mean_1d"],
            p_values={"amount_mean_1d": 1e-9, "tx_hour": 0.0, "card_count_1d": 0.3},
            ignored=["tx_hour"],
        ),
    ),
    (170.0, _event("registered", "v2")),
    (171.0, _event("promoted", "v2", previous="v1")),
]


def test_the_story_advances_with_the_model_events() -> None:
    assert story_state(TopicView(events=STORY[:2])) == "monitoring"  # first champion only
    assert story_state(TopicView(events=STORY[:3])) == "training challenger"
    assert story_state(TopicView(events=STORY[:4])) == "challenger in the gates"
    assert story_state(TopicView(events=STORY)) == "recovered: v2 serving"


def test_a_quality_drop_also_starts_the_story_and_a_rejection_ends_it() -> None:
    drop = (100.0, _event("quality_report", "v1", dropped=True, average_precision=0.2))
    rejected = (150.0, _event("rejected", "v2", previous="v1"))
    assert story_state(TopicView(events=[*STORY[:2], drop])) == "training challenger"
    assert story_state(TopicView(events=[*STORY[:2], drop, rejected])) == (
        "challenger rejected, champion keeps serving"
    )
    assert event_line(drop[1]) == ("bold yellow", "QUALITY DROP on v1 (AP 0.200)")
    gated = ModelEvent(
        kind="rejected",
        model_version="v2",
        at=AT,
        reasons=["retrainer (drift)", "gate 3 average_precision: pass", "gate 4 x: FAIL - why"],
    )
    assert event_line(gated) == ("bold red", "REJECTED v2: gate 4 x: FAIL - why")


def test_event_lines_tell_drift_gates_and_promotion() -> None:
    assert event_line(STORY[2][1]) == ("bold yellow", "DRIFT DETECTED on v1: amount_mean_1d")
    assert event_line(_event("drift_report", "v1", drifted=False))[1] == (
        "drift check on v1: no drift"
    )
    assert event_line(STORY[3][1])[1] == "challenger trained + registered: v2"
    assert event_line(STORY[4][1])[1] == "gates passed (5/5 reported) -> PROMOTED v2 (was v1)"


def _frame() -> Frame:
    scorer = MetricsSnapshot()
    scorer.add_text('fraud_model_info{version="v2"} 1.0\n')
    scorer.add_text('fraud_model_info{version="v2"} 1.0\n')
    retrainer = MetricsSnapshot()
    retrainer.add_text(
        "fraud_drift_detected 1.0\n"
        "fraud_score_drift_p_value 0.5\n"
        'fraud_drift_feature_p_value{feature="amount_mean_1d"} 1e-09\n'
        'fraud_drift_feature_p_value{feature="hour"} 0.7\n'
        'fraud_drift_feature_drifted{feature="amount_mean_1d"} 1.0\n'
    )
    topics = TopicView(
        decisions=1000,
        outcomes=Counter({"approve": 980, "review": 15, "decline": 5}),
        by_version=Counter({"v1": 700, "v2": 300}),
        review_cases=20,
        labels=Counter({"oracle": 20, "chargeback": 7}),
        fraud_labels=12,
        events=STORY,
        pattern={"v1": PatternStats(10, 2), "v2": PatternStats(8, 6)},
    )
    return Frame(
        elapsed_s=300.0,
        deadline_s=480.0,
        phase="recovery",
        rate=100.0,
        produced=1000,
        api_url="http://127.0.0.1:8000",
        api_key="demo-key",
        initial_champion="v1",
        throughput=99.5,
        latency_recent={0.5: 0.004, 0.95: 0.012, 0.99: 0.031},
        latency_total={0.5: 0.005, 0.95: 0.02, 0.99: 0.06},
        within_sla=0.985,
        scorer=scorer,
        retrainer=retrainer,
        topics=topics,
        processes={"scorer-0": True, "retrainer": False},
    )


def test_a_frame_renders_every_panel_as_text() -> None:
    text = render_text(_frame(), width=160)
    for expected in [
        "demo-key",
        "recovered: v2 serving",
        "100/s",  # throughput, rounded
        "31.0 ms",  # recent p99
        "60.0 ms",  # whole-run p99, above the SLA
        "98.50%",
        "approve",
        "980 (98.0%)",
        "review queue: flagged",
        "labels from chargeback",
        "decided by v1 (initial)",
        "20% of 10",  # v1 caught 2 of 10 card-testing frauds
        "75% of 8",
        "DRIFT",
        "1.00e-09",
        "DRIFT DETECTED on v1",
        "PROMOTED v2 (was v1)",
        "retrainer DOWN",
        "first champion promoted: v1",
    ]:
        assert expected in text, expected
    assert "tx_hour" not in text  # a calendar feature is reported, not tested


def test_p_values_come_from_the_gauges_before_any_drift_report() -> None:
    frame = _frame()
    frame.topics.events = []
    assert drift_p_values(frame) == [("amount_mean_1d", 1e-9, True), ("hour", 0.7, False)]
    frame.topics.events = STORY
    assert drift_p_values(frame) == [("amount_mean_1d", 1e-9, True), ("card_count_1d", 0.3, False)]


def test_serving_versions_come_from_the_model_info_metric() -> None:
    assert serving_versions(_frame().scorer) == ["v2"]


def _served() -> list[Served]:
    rows = [
        # before the switch: not counted
        Served("t0", 0.9, True, "v1", False, 1, CARD_TESTING),
        # champion after the switch: misses the card-testing fraud
        Served("t1", 0.2, False, "v1", True, 1, CARD_TESTING),
        Served("t2", 0.6, True, "v1", True, 0, 0),
        Served("t3", 0.1, False, "v1", True, 0, 0),
        # challenger after promotion: ranks the fraud first and flags it
        Served("t4", 0.95, True, "v2", True, 1, CARD_TESTING),
        Served("t5", 0.3, False, "v2", True, 0, 0),
        Served("t6", 0.05, False, "v2", True, 0, 0),
        Served("t7", 0.5, False, "v2", True, None, None),  # no truth: left out
    ]
    return rows


def test_quality_after_the_switch_per_version() -> None:
    by_version = {q.version: q for q in quality_after_switch(_served())}
    v1, v2 = by_version["v1"], by_version["v2"]
    assert (v1.transactions, v1.frauds, v1.pattern_frauds, v1.pattern_caught) == (3, 1, 1, 0)
    assert v1.average_precision == pytest.approx(1 / 2)  # the fraud ranks second of three
    assert (v2.transactions, v2.frauds, v2.pattern_frauds, v2.pattern_caught) == (3, 1, 1, 1)
    assert v2.average_precision == pytest.approx(1.0)


def test_average_precision_needs_both_classes() -> None:
    assert average_precision([0, 0], [0.1, 0.2]) is None
    assert average_precision([1, 0], [0.9, 0.1]) == 1.0


def test_summary_counts_promotions_latency_and_duplicates() -> None:
    served = [*_served(), Served("t1", 0.2, False, "v1", True, 1, CARD_TESTING)]
    buckets = [(0.01, 90.0), (0.05, 100.0), (math.inf, 100.0)]
    summary = summarize(1000, _frame().topics, served, buckets)
    assert summary.duplicates == 1
    assert summary.promotions == [(-20.0, "v1", None), (171.0, "v2", "v1")]
    assert summary.within_sla == 1.0
    assert summary.latency[0.5] == pytest.approx(0.01 * 50 / 90)
    assert summary.as_dict()["latency_s"]["p50"] == summary.latency[0.5]
    text = render_text_of_table(summary)
    assert "v2 at 171s (replacing v1)" in text
    assert "AP 1.000" in text


def render_text_of_table(summary: object) -> str:
    import io

    from rich.console import Console

    console = Console(record=True, width=160, file=io.StringIO())
    console.print(summary_table(summary))  # type: ignore[arg-type]
    return console.export_text()
