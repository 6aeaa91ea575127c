"""The feedback processor's Prometheus metrics (``FRAUD_METRICS_PORT``; 0 = off)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
