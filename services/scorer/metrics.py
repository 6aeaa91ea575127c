"""The scorer's Prometheus metrics. Stage names match the code and the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, Info

from services.scorer.batch_histogram import BatchHistogram

STAGES = (
    "poll",
    "decode",
    "dedupe",
    "features",
    "inference",
    "policy",
    "explain",
    "produce",
    "commit",
)

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)

DECISIONS = Counter("fraud_decisions_total", "Decisions written, by outcome", ["decision"])
E2E_LATENCY = BatchHistogram(
    "fraud_e2e_latency_seconds",
    "Transaction produce timestamp to decision, per transaction",
    buckets=_LATENCY_BUCKETS,
)
STAGE_LATENCY = Histogram(
    "fraud_stage_latency_seconds",
    "Time per batch spent in each stage",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
_STAGE_CHILDREN = {stage: STAGE_LATENCY.labels(stage) for stage in STAGES}
BATCH_SIZE = Histogram(
    "fraud_batch_size_records",
    "Records per polled batch",
    buckets=(1, 5, 10, 25, 50, 100, 200, 300, 500, 1000),
)
CONSUMER_LAG = Gauge(
    "fraud_consumer_lag_records",
    "Records behind the partition end, per partition this process is assigned",
    ["topic", "partition"],
)
_LAG_SERIES: set[tuple[str, str]] = set()
"""The (topic, partition) series of :data:`CONSUMER_LAG` this process exports now."""
DEAD_LETTERS = Counter("fraud_dead_letters_total", "Records sent to the DLQ", ["reason"])
DUPLICATES = Counter("fraud_duplicates_skipped_total", "Replayed transactions already decided")
MODEL_INFO = Info("fraud_model", "The model version serving decisions")
MODEL_RELOADS = Counter("fraud_model_reloads_total", "Champion reload attempts", ["result"])
BACKPRESSURE = Counter("fraud_backpressure_pauses_total", "Times consumption was paused", ["cause"])
REVIEW_CASES = Counter("fraud_review_cases_total", "Cases sent to fraud.review")
FAULT_ACTIVE = Gauge(
    "fraud_fault_active", "1 while the fault lasts (services/scorer/faults.py)", ["fault"]
)
FAULTS_BEGUN = Counter("fraud_faults_total", "Faults that began", ["fault"])
RECORDS_RESENT = Counter(
    "fraud_records_resent_total", "Failed writes sent again (only those not in the log)"
)
RECORDS_LANDED = Counter(
    "fraud_records_landed_unacknowledged_total",
    "Failed writes found in the log anyway (acknowledgement lost): not sent again",
)
BATCHES_ABANDONED = Counter(
    "fraud_batches_abandoned_total",
    "Batches given up unwritten or uncommitted because their partitions moved",
    ["reason"],
)
RECOVERY_INCOMPLETE = Counter(
    "fraud_recovery_incomplete_total",
    "Reads of the recent decisions that ended before every partition was read",
)
STATE_REBUILDS = Counter(
    "fraud_state_rebuilds_total", "Real-time state rebuilds from transactions", ["result"]
)
STATE_REBUILD_TRANSACTIONS = Gauge(
    "fraud_state_rebuild_transactions", "Transactions replayed by the last state rebuild"
)
STATE_GENERATION = Gauge("fraud_state_generation", "Generation of the real-time state in use")

log = logging.getLogger("fraud.scorer")


def observe_stage(stage: str, seconds: float) -> None:
    """One batch's time in ``stage`` (the known stages' series are created up front)."""
    child = _STAGE_CHILDREN.get(stage)
    (child or STAGE_LATENCY.labels(stage)).observe(seconds)


GROUP_STATE: dict[str, object] = {}
"""The consumer group as librdkafka last reported it (``cgrp``: state, join_state,
rebalance_cnt), for the scorer's progress log line."""


def record_stats(stats_json: str) -> None:
    """librdkafka statistics callback: export consumer lag per assigned partition and keep
    the consumer group's state."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return
    group = stats.get("cgrp")
    if isinstance(group, dict):
        GROUP_STATE.update(
            {k: group[k] for k in ("state", "join_state", "rebalance_cnt") if k in group}
        )
    for topic, body in stats.get("topics", {}).items():
        current = set()
        for partition, p in body.get("partitions", {}).items():
            lag = p.get("consumer_lag", -1)
            if partition != "-1" and lag >= 0:
                CONSUMER_LAG.labels(topic, partition).set(lag)
                current.add((topic, partition))
        stale = {series for series in _LAG_SERIES if series[0] == topic} - current
        _forget(stale)
        _LAG_SERIES.update(current)


def forget_partitions(topic_partitions: Iterable[tuple[str, int]]) -> None:
    """Drop the lag series of partitions this process no longer holds (revoked or lost):
    a stale series would keep ``sum(fraud_consumer_lag_records)`` above zero for a group
    that is caught up, and ``ScorerStalled`` would fire."""
    _forget({(topic, str(partition)) for topic, partition in topic_partitions})


def _forget(series: set[tuple[str, str]]) -> None:
    for topic, partition in series & _LAG_SERIES:
        CONSUMER_LAG.remove(topic, partition)
        _LAG_SERIES.discard((topic, partition))
