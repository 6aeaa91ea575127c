"""Metrics an operator's alerts rely on: lag only for held partitions, API latency per
route, the feedback processor's counters, quality ratios apart from counts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from models.quality import QualityBaseline, QualityReport
from services.api.metrics import REQUEST_SECONDS, UNMATCHED, RequestMetrics
from services.feedback.metrics import FeedbackCollector
from services.retrainer import monitor
from services.scorer import metrics

pytestmark = pytest.mark.unit


def lag(topic: str, partition: str) -> float | None:
    return REGISTRY.get_sample_value(
        "fraud_consumer_lag_records", {"topic": topic, "partition": partition}
    )


def stats(topic: str, lags: dict[str, int]) -> str:
    partitions = {p: {"consumer_lag": value} for p, value in lags.items()}
    return json.dumps({"topics": {topic: {"partitions": partitions}}})


def test_lag_series_leave_with_their_partitions() -> None:
    metrics.record_stats(stats("t.tx", {"0": 5, "1": 7, "-1": 0}))
    assert (lag("t.tx", "0"), lag("t.tx", "1"), lag("t.tx", "-1")) == (5, 7, None)
    metrics.forget_partitions([("t.tx", 1)])  # revoked
    assert (lag("t.tx", "0"), lag("t.tx", "1")) == (5, None)
    metrics.record_stats(stats("t.tx", {"0": 0, "1": -1, "2": 3}))  # 1 not held: lag -1
    assert (lag("t.tx", "0"), lag("t.tx", "1"), lag("t.tx", "2")) == (0, None, 3)
    metrics.record_stats(stats("t.tx", {"2": 1}))  # 0 lost without a revoke callback
    assert (lag("t.tx", "0"), lag("t.tx", "2")) == (None, 1)
    metrics.forget_partitions([("t.tx", 2), ("t.tx", 9)])
    assert lag("t.tx", "2") is None


def requests_seen(route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "fraud_api_request_duration_seconds_count",
        {"route": route, "method": method, "status": status},
    )
    return value or 0.0


def test_api_latency_is_labelled_by_route_template_and_status() -> None:
    app = FastAPI()
    app.add_middleware(RequestMetrics)

    @app.get("/v1/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    before = {
        key: requests_seen(*key)
        for key in [
            ("/v1/items/{item_id}", "GET", "200"),
            ("/v1/items/{item_id}", "GET", "422"),
            (UNMATCHED, "GET", "404"),
            ("/boom", "GET", "500"),
        ]
    }
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/v1/items/1").status_code == 200
    assert client.get("/v1/items/2").status_code == 200
    assert client.get("/v1/items/x").status_code == 422
    assert client.get("/no/such/path/123").status_code == 404
    assert client.get("/boom").status_code == 500
    after = {key: requests_seen(*key) - value for key, value in before.items()}
    assert after == {
        ("/v1/items/{item_id}", "GET", "200"): 2,
        ("/v1/items/{item_id}", "GET", "422"): 1,
        (UNMATCHED, "GET", "404"): 1,
        ("/boom", "GET", "500"): 1,
    }
    assert REQUEST_SECONDS._labelnames == ("route", "method", "status")


@dataclass
class Stream:
    labels: int = 0
    joined: int = 0


def test_feedback_counters_are_read_at_scrape_time() -> None:
    stream = Stream()
    registry = CollectorRegistry()
    registry.register(FeedbackCollector(stream))
    stream.labels, stream.joined = 4, 3
    text = generate_latest(registry).decode()
    assert 'fraud_feedback_stream_events_total{event="labels"} 4.0' in text
    assert 'fraud_feedback_stream_events_total{event="joined"} 3.0' in text


def test_quality_ratios_and_row_counts_are_separate_metrics() -> None:
    report = QualityReport(
        version="v1",
        labelled_rows=500,
        frauds=20,
        reviewed_cases=40,
        reviewed_precision=0.5,
        average_precision=0.6,
        baseline=QualityBaseline("v1", 0.7, 0.55, 0.3),
        tolerance=0.2,
        dropped=False,
    )
    monitor.record_quality(report)
    ratio = {
        m: REGISTRY.get_sample_value("fraud_quality_ratio", {"measure": m})
        for m in monitor.QUALITY_RATIOS
    }
    assert ratio == {
        "average_precision": 0.6,
        "reviewed_precision": 0.5,
        "baseline_average_precision": 0.7,
        "baseline_review_precision": 0.55,
    }
    rows = {
        k: REGISTRY.get_sample_value("fraud_quality_window_rows", {"kind": k})
        for k in ("labelled", "fraud", "reviewed")
    }
    assert rows == {"labelled": 500, "fraud": 20, "reviewed": 40}
