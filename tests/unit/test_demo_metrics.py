"""The demo dashboard's reading of Prometheus text: sums over scorers, quantiles, SLA share."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest

from services.demo.scrape import MetricsSnapshot, bucket_delta, quantile, scrape, share_below

pytestmark = pytest.mark.unit

BUCKETS = (0.005, 0.01, 0.05, 0.1)


def _scorer_text(latencies: list[float], decisions: dict[str, int], version: str) -> str:
    """/metrics text of a scorer-like process (the real client library writes it)."""
    registry = CollectorRegistry()
    histogram = Histogram("fraud_e2e_latency_seconds", "e2e", buckets=BUCKETS, registry=registry)
    for value in latencies:
        histogram.observe(value)
    counter = Counter("fraud_decisions_total", "d", ["decision"], registry=registry)
    for outcome, n in decisions.items():
        counter.labels(outcome).inc(n)
    Info("fraud_model", "m", registry=registry).info({"version": version})
    return generate_latest(registry).decode()


def test_two_scorers_add_up_like_sum_by_le() -> None:
    snapshot = MetricsSnapshot()
    snapshot.add_text(_scorer_text([0.003, 0.007], {"approve": 5, "review": 1}, "v1"))
    snapshot.add_text(_scorer_text([0.02, 0.2], {"approve": 3, "decline": 2}, "v2"))

    assert snapshot.buckets("fraud_e2e_latency_seconds") == [
        (0.005, 1.0),
        (0.01, 2.0),
        (0.05, 3.0),
        (0.1, 3.0),
        (math.inf, 4.0),
    ]
    assert snapshot.total("fraud_decisions_total") == 11.0
    assert snapshot.by_label("fraud_decisions_total", "decision") == {
        "approve": 8.0,
        "review": 1.0,
        "decline": 2.0,
    }
    assert snapshot.total("fraud_decisions_total", decision="approve") == 8.0
    assert sorted(snapshot.by_label("fraud_model_info", "version")) == ["v1", "v2"]


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    buckets = [(0.01, 50.0), (0.05, 90.0), (0.1, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)  # rank 50 ends the first bucket
    assert quantile(0.7, buckets) == pytest.approx(0.01 + 0.04 * 20 / 40)
    assert quantile(0.95, buckets) == pytest.approx(0.05 + 0.05 * 5 / 10)
    assert quantile(0.25, buckets) == pytest.approx(0.005)  # from 0 within the first bucket


def test_quantile_beyond_the_last_finite_bucket_is_that_bound() -> None:
    assert quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1


def test_quantile_and_share_without_observations_are_none() -> None:
    assert quantile(0.5, []) is None
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert share_below(0.05, [(0.05, 0.0), (math.inf, 0.0)]) is None


def test_share_within_the_sla_counts_the_bucket_at_the_bound() -> None:
    buckets = [(0.01, 3.0), (0.05, 9.0), (0.1, 10.0), (math.inf, 12.0)]
    assert share_below(0.05, buckets) == 9.0 / 12.0


def test_recent_window_is_the_difference_of_two_scrapes() -> None:
    before = [(0.01, 3.0), (0.05, 5.0), (math.inf, 5.0)]
    now = [(0.01, 4.0), (0.05, 9.0), (math.inf, 10.0)]
    assert bucket_delta(now, before) == [(0.01, 1.0), (0.05, 4.0), (math.inf, 5.0)]
    # a restarted scorer resets its counters: never negative
    assert bucket_delta(before, now) == [(0.01, 0.0), (0.05, 0.0), (math.inf, 0.0)]


def test_an_endpoint_that_does_not_answer_is_counted_not_fatal() -> None:
    snapshot = scrape(["http://127.0.0.1:9/metrics"], timeout_s=0.2)
    assert (snapshot.endpoints_up, snapshot.endpoints_down) == (0, 1)
    assert snapshot.total("fraud_decisions_total") == 0.0
