"""Scorer settings (``FRAUD_`` environment variables), built once in ``main()``."""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field, model_validator

from services.scorer.crashpoints import CrashPoint
from services.settings import CommonSettings


class ScorerSettings(CommonSettings):
    group_id: str = Field("scorer", description="consumer group of all scorer processes")
    instance_id: str | None = Field(
        None,
        description="static group membership id (group.instance.id); unique per process. "
        "Default: <hostname>-scorer-<index>",
    )
    instance_index: int = Field(0, ge=0, description="used to build the default instance id")
    batch_max: int = Field(500, ge=1, le=10_000, description="max messages per poll")
    poll_timeout_ms: int = Field(
        5, ge=0, description="how long an idle scorer waits for a record per poll"
    )
    dedupe_ttl_s: int = Field(
        3600, ge=60, description="how long a decided transaction_id is remembered for replays"
    )
    recovery_tail: int = Field(
        5000, ge=0, description="decisions per scored partition re-read on assignment (0 = off)"
    )
    metrics_port: int = Field(9101, ge=0, description="Prometheus /metrics port (0 = off)")
    reload_interval_s: float = Field(
        1.0,
        gt=0,
        description="how often the champion pointer is checked (the fallback when "
        "reload_on_events: a HEAD request on an s3:// registry)",
    )
    reload_on_events: bool | None = Field(
        None,
        description="check the champion as soon as model.events announces a promotion or a "
        "rollback, not only at the next poll [on for an s3:// registry, off for a folder]",
    )
    max_backoff_s: float = Field(5.0, gt=0, description="cap of the retry back-off")
    stats_interval_ms: int = Field(5000, ge=0, description="librdkafka stats (consumer lag)")
    progress_log_s: float = Field(
        30.0, gt=0, description="period of the progress log line (decided, assignment, group)"
    )
    session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="consumer-group session timeout: a member silent this long loses its "
        "partitions (librdkafka session.timeout.ms)",
    )
    max_poll_interval_ms: int = Field(
        300_000,
        ge=1_000,
        description="longest time between two polls before the member leaves the group "
        "(librdkafka max.poll.interval.ms); at least the session timeout",
    )
    delivery_timeout_ms: int = Field(
        8_000,
        ge=1_000,
        description="how long the producer tries a write before reporting it failed "
        "(librdkafka message.timeout.ms); failed writes are resent by the scorer. At most "
        "the session timeout: a stalled scorer's queued writes expire before its "
        "partitions can move to another member",
    )
    delivery_mode: Literal["ledger", "transactions"] = Field(
        "ledger",
        description="'ledger': at-least-once writes made effectively-once by the Redis "
        "decision ledger (any broker); 'transactions': each batch's writes and offsets in "
        "one Kafka transaction (exactly-once v2: Apache Kafka; see "
        "services/scorer/transactional.py)",
    )
    max_unsettled_batches: int = Field(
        4,
        ge=1,
        le=64,
        description="sent batches a scorer holds unsettled when it polls: each waits for "
        "its review cases' reasons (computed off the decisions' path) and its acks before "
        "its offsets are committed; past this it waits for the oldest (1 = settle one "
        "batch late)",
    )
    crash_at: CrashPoint | None = Field(
        None,
        description="test hook of the fault-injection suite: SIGKILL the scorer at this "
        "point of its batch cycle (services/scorer/crashpoints.py). Never set in production",
    )
    crash_after: int = Field(1, ge=1, description="test hook: at the n-th time crash_at is reached")

    @model_validator(mode="after")
    def _poll_interval_covers_session(self) -> ScorerSettings:
        if self.max_poll_interval_ms < self.session_timeout_ms:
            raise ValueError("max_poll_interval_ms must be at least session_timeout_ms")
        if self.delivery_timeout_ms > self.session_timeout_ms:
            raise ValueError("delivery_timeout_ms must be at most session_timeout_ms")
        return self

    def member_id(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-scorer-{self.instance_index}"
