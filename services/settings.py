"""Settings shared by every service, read from the environment with the ``FRAUD_`` prefix.

Each service defines one frozen settings class deriving from :class:`CommonSettings` and
builds it once in its ``main()``; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka import DEFAULT_ASSIGNMENT_STRATEGY, AssignmentStrategy
from streams.topics import Topics


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAUD_", extra="forbid", frozen=True)

    kafka_bootstrap: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers (host:port[,host:port])"
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (may hold a password)"
    )
    kafka_assignment_strategy: AssignmentStrategy = Field(
        DEFAULT_ASSIGNMENT_STRATEGY,
        description="consumer-group assignment: cooperative-sticky on Apache Kafka; the "
        "embedded broker needs an eager one (see streams.kafka)",
    )
    topic_prefix: str = Field("", description="prefix added to every topic name")
    redis_prefix: str = Field("fraud", description="prefix of every Redis key of this project")
    state_dir: Path = Field(Path("state"), description="local state: broker data, PIDs, registry")
    feast_project: str = Field(
        "fraud", description="Feast project: the namespace of profile keys in the online store"
    )
    label_delay_days: int = Field(7, ge=0, description="label delay of terminal-risk features")
    allocator_mmap_threshold_kb: int = Field(
        4096,
        ge=0,
        le=32768,
        description="glibc mmap threshold of the hot-path processes (scorer, API); 0 = glibc's "
        "own (see services.allocator)",
    )
    allocator_trim_threshold_kb: int = Field(
        16384, ge=0, description="glibc trim threshold of the hot-path processes; 0 = glibc's own"
    )

    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)

    @property
    def registry_dir(self) -> Path:
        return self.state_dir / "registry"
