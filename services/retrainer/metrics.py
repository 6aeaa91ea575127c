"""The retrainer's Prometheus metrics. Stage names match the code and the logs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FEATURE_P_VALUE = Gauge(
    "fraud_drift_feature_p_value", "Drift test p-value per feature (uncorrected)", ["feature"]
)
FEATURE_DRIFTED = Gauge(
    "fraud_drift_feature_drifted", "1 if the feature drifted after correction", ["feature"]
)
DRIFT = Gauge("fraud_drift_detected", "1 if the last check found data drift")
SCORE_DRIFT = Gauge("fraud_score_drift_p_value", "KS p-value of served vs reference scores")
QUALITY = Gauge(
    "fraud_quality_ratio",
    "Label-based quality of the champion, 0-1: average_precision, reviewed_precision and "
    "the champion's promised baseline_average_precision, baseline_review_precision",
    ["measure"],
)
QUALITY_ROWS = Gauge(
    "fraud_quality_window_rows",
    "Rows of the last quality check: labelled, frauds among them, reviewed cases",
    ["kind"],
)
QUALITY_DROP = Gauge("fraud_quality_drop", "1 if the last quality check found a drop")
SERVED_ROWS = Gauge("fraud_retrainer_served_rows", "Served rows kept in memory")
CHECKS = Counter("fraud_retrainer_checks_total", "Monitor checks", ["check", "result"])
RETRAINS = Counter(
    "fraud_retrainer_runs_total", "Challenger runs by outcome", ["result"]
)  # result: promoted | rejected | failed | timeout
TRAINING_SECONDS = Gauge("fraud_retrainer_training_seconds", "Duration of the last training")
OUTBOX_EVENTS = Gauge(
    "fraud_retrainer_outbox_events", "Model events waiting in the outboxes for the broker"
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "fraud_retrainer_outbox_oldest_seconds", "Age of the oldest model event not yet announced"
)
PUBLISH_FAILURES = Counter(
    "fraud_retrainer_publish_failures_total", "Failed attempts to announce model events"
)
EVENTS_ANNOUNCED = Counter(
    "fraud_retrainer_events_announced_total", "Model events acknowledged on model.events"
)
