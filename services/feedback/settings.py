"""Feedback processor settings (``FRAUD_`` environment variables), built once in ``main()``."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field

from features.profiles.names import DEFAULT_DELAY_DAYS
from services.settings import CommonSettings, store_location
from streams.feedback.app import FeedbackConfig


class FeedbackSettings(CommonSettings):
    feedback_app_id: str = Field(
        "feedback",
        description="faust app id (consumer group, internal topic names); the topic prefix "
        "is put in front of it",
    )
    metrics_port: int = Field(0, ge=0, description="Prometheus /metrics port (0 = off)")
    feedback_partitions: int = Field(
        3, ge=1, le=64, description="partitions of the internal re-keyed topics and tables"
    )
    feedback_store: str = Field("memory://", description="faust table store URL")
    served_retention_s: float = Field(
        7 * 86_400.0, gt=0, description="how long a served decision waits for its labels"
    )
    label_wait_s: float = Field(
        600.0, gt=0, description="how long a label waits for its decision before the DLQ"
    )
    batch_max: int = Field(500, ge=1, description="max events per join batch")
    batch_within_s: float = Field(0.5, gt=0, description="max wait to fill a join batch")
    tick_s: float = Field(5.0, gt=0, description="period of expiry and deferred retries")
    progress_log_s: float = Field(
        30.0, gt=0, description="period of the worker's progress log line (counters, recovery)"
    )
    session_timeout_s: float = Field(
        10.0, ge=6.0, le=300.0, description="group session timeout of the faust worker"
    )
    instance_id: str | None = Field(
        None,
        description="static group membership id, unique per process "
        "(default <hostname>-feedback-<instance_index>)",
    )
    instance_index: int = Field(0, ge=0, description="used to build the default instance id")
    stall_s: float = Field(
        120.0,
        ge=0,
        description="records waiting beyond a committed offset unmoved this long: the worker "
        "exits (status 75) for its supervisor to restart it (0 = off; streams/feedback/stall.py)",
    )
    pause_after: int | None = Field(
        None,
        ge=1,
        description="test hook: pause the worker's partitions after it routed this many records, "
        "as a stalled fetcher does. Never set in production",
    )
    restart_replay: int = Field(
        1000,
        ge=0,
        description="records per partition replayed on start (see streams.feedback.rewind)",
    )
    training_dir: Path | str | None = Field(
        None,
        description="training store: a folder or s3://bucket/prefix [state_dir/training]",
    )
    risk_updates: bool = Field(True, description="apply fraud labels to terminal risk in Redis")
    feast_project: str = Field("fraud", description="Feast project of the terminal-risk rows")
    label_delay_days: int = Field(
        DEFAULT_DELAY_DAYS, ge=0, description="label delay of the terminal-risk definition"
    )

    @property
    def training_root(self) -> Path | str:
        return store_location(self.training_dir, self.state_dir / "training")

    def app_config(self) -> FeedbackConfig:
        return FeedbackConfig(
            app_id=f"{self.topic_prefix}{self.feedback_app_id}",
            bootstrap=self.kafka(),
            topics=self.topics(),
            datadir=str(self.state_dir / "feedback"),
            partitions=self.feedback_partitions,
            store=self.feedback_store,
            retention_s=self.served_retention_s,
            label_wait_s=self.label_wait_s,
            batch_max=self.batch_max,
            batch_within_s=self.batch_within_s,
            tick_s=self.tick_s,
            progress_log_s=self.progress_log_s,
            session_timeout_s=self.session_timeout_s,
            instance_id=self.instance_id
            or f"{socket.gethostname()}-feedback-{self.instance_index}",
            stall_s=self.stall_s,
            pause_after=self.pause_after,
        )
