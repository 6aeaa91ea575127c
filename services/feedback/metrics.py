"""The feedback processor's Prometheus metrics (``FRAUD_METRICS_PORT``; 0 = off)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

TRAINING_ROWS = Counter(
    "fraud_feedback_training_rows_total", "Labelled pairs given to the training store", ["result"]
)  # result: written | duplicate (a replay) | unusable (another feature set)
SINK_FAILING = Gauge(
    "fraud_feedback_sink_failing",
    "1 while writes to a target fail and the processor holds its batch back",
    ["target"],
)  # target: training_store | terminal_risk
SINK_RETRIES = Counter(
    "fraud_feedback_sink_retries_total", "Failed write attempts, retried", ["target"]
)
DEFERRED_LABELS = Gauge(
    "fraud_feedback_deferred_labels", "Fraud labels waiting until terminal risk may use them"
)
MISSING_ROWS = Gauge(
    "fraud_feedback_missing_rows",
    "Labels whose training rows were quarantined and are not written again yet",
)

STREAM = "fraud_feedback_stream_events"


class FeedbackCollector(Collector):
    """``fraud_feedback_stream_events_total{event}``: the join's own counters (decisions and
    labels routed and joined, dead letters, expired decisions), read at scrape time, so
    the event loop pays nothing per event and a counter added to
    :class:`streams.feedback.app.FeedbackCounters` is exported without a change here."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            STREAM, "Events of the feedback join, by event", labels=["event"]
        )
        if self._stream is not None and dataclasses.is_dataclass(self._stream):
            for field in dataclasses.fields(self._stream):
                value = getattr(self._stream, field.name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([field.name], float(value))
        yield family
