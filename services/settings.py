"""Settings shared by every service, read from the environment with the ``FRAUD_`` prefix.

Each service defines one frozen settings class deriving from :class:`CommonSettings` and
builds it once in its ``main()``; nothing reads the environment at import time. A
``FRAUD_*`` variable that no settings class, tool or test reads is refused, naming the
closest known one (:mod:`services.settings_names`): a typo must not fall back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.definitions import CardWriteMode
from features.redis_nodes import CLUSTER_SCHEMES
from services.settings_names import unknown_variables
from streams.errors import ConfigError
from streams.kafka import DEFAULT_ASSIGNMENT_STRATEGY, AssignmentStrategy, KafkaConnection
from streams.serde import EventTimeBounds
from streams.topics import BY_BASE, Topics

if TYPE_CHECKING:
    from models.registry_open import Registry

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TopicLayout(BaseModel):
    """One topic's layout (``FRAUD_TOPIC_LAYOUT``); what is left out keeps its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partitions: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    min_insync_replicas: int | None = Field(None, ge=1)


LAYOUT_DEFAULT = "default"
"""The ``FRAUD_TOPIC_LAYOUT`` key whose replication settings apply to every topic."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FRAUD_", extra="forbid", frozen=True, env_nested_delimiter="__"
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers (host:port[,host:port])"
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT", description="how every Kafka client connects (SASL_SSL for managed Kafka)"
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        None, description="SASL mechanism, required with SASL_PLAINTEXT / SASL_SSL"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_ca_file: Path | None = Field(
        None, description="CA bundle that signed the brokers' certificates (SSL / SASL_SSL)"
    )
    kafka_ssl_cert_file: Path | None = Field(
        None, description="client certificate for mutual TLS (with kafka_ssl_key_file)"
    )
    kafka_ssl_key_file: Path | None = Field(None, description="client private key (mutual TLS)")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="password of the client private key, if it is encrypted"
    )
    kafka_config: dict[str, str] = Field(
        default_factory=dict,
        description="any other librdkafka property for every confluent-kafka client, as JSON "
        '(FRAUD_KAFKA_CONFIG=\'{"client.rack": "az1"}\') or one variable each with dots '
        "written as underscores (FRAUD_KAFKA_CONFIG__CLIENT_RACK=az1); applied after the "
        "settings above, so it can override them. Secrets belong in the SecretStr settings.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (secret): redis://[user:password@]host:port/db, rediss:// for "
        "TLS; the user is a Redis ACL user. A Redis Cluster: redis-cluster://host:port (any "
        "node; rediss-cluster:// for TLS): every batch is then split by node",
    )
    redis_ssl_ca_file: Path | None = Field(
        None, description="CA bundle that signed the Redis server certificate (rediss://)"
    )
    redis_ssl_cert_file: Path | None = Field(
        None, description="client certificate for Redis mutual TLS (with redis_ssl_key_file)"
    )
    redis_ssl_key_file: Path | None = Field(None, description="client key for Redis mutual TLS")
    kafka_assignment_strategy: AssignmentStrategy = Field(
        DEFAULT_ASSIGNMENT_STRATEGY,
        description="consumer-group assignment: cooperative-sticky on Apache Kafka; the "
        "embedded broker needs an eager one (see streams.kafka)",
    )
    event_time_max_skew_s: float = Field(
        300.0,
        ge=0,
        description="a transaction dated more than this after the clock is refused "
        "(DLQ event_time_out_of_range): one future-dated record would otherwise make its "
        "card's and terminal's later transactions 'too late' for the velocity windows",
    )
    event_time_max_age_s: float = Field(
        30 * 86_400.0,
        ge=0,
        description="a transaction older than this is refused (the longest feature window: "
        "it cannot be scored as of its time); 0 = no lower bound (replays of history)",
    )
    topic_prefix: str = Field("", description="prefix added to every topic name")
    topic_layout: dict[str, TopicLayout] = Field(
        default_factory=dict,
        description="partitions, replication_factor and min_insync_replicas per topic base "
        'name, as JSON (FRAUD_TOPIC_LAYOUT=\'{"default": {"replication_factor": 3, '
        '"min_insync_replicas": 2}, "transactions": {"partitions": 48}}\') or one variable '
        "each with dots written as underscores (FRAUD_TOPIC_LAYOUT__TRANSACTIONS__PARTITIONS"
        "=48); `default` sets every topic's replication. transactions.scored has as many "
        "partitions as transactions unless set. Used when topics are created",
    )
    redis_prefix: str = Field("fraud", description="prefix of every Redis key of this project")
    card_cache_size: int = Field(
        100_000,
        ge=0,
        description="cards whose state the scorer (and the REST API) keeps in memory between "
        "batches (LRU); a card not cached is read from Redis first. A cached card costs about "
        "3 KB of RSS with 70 events of history (32 B more per event): 100,000 cards ~ 300 MB. "
        "0 = no cache: every card is read each batch (docs/scaling.md sizes it)",
    )
    profile_cache_size: int = Field(
        100_000,
        ge=0,
        description="terminals whose profile row the scorer (and the REST API) keeps in memory "
        "between batches, about 200 B each; a terminal not cached is read from Redis. Every "
        "profile writer of the project (feedback, `fraudctl features materialize`) empties the "
        "caches at their next batch; 0 = no cache: every terminal is read each batch",
    )
    profile_cache_max_age_s: float = Field(
        60.0,
        gt=0,
        description="the oldest a cached profile row may be: how late a row written by hand "
        "(not through the project's writers, e.g. `feast materialize`) can be seen",
    )
    card_writes: CardWriteMode = Field(
        "append",
        description="how a card's new events reach Redis: 'append' writes only the new "
        "records in place (least Redis CPU and bandwidth; Redis then reserves as much again "
        "as the value holds, ~1.8x its bytes per card); 'rewrite' writes the card whole, "
        "trimmed to its window (memory = its bytes; each write carries its history). Same "
        "features either way (docs/scaling.md)",
    )
    state_dir: Path = Field(Path("state"), description="local state: broker data, PIDs, registry")
    registry_url: str | None = Field(
        None,
        description="model registry: a folder or s3://bucket/prefix shared by several hosts "
        "[state_dir/registry]; S3 credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
        "(or any standard AWS source)",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="endpoint of an S3-compatible store (MinIO, Ceph...) for s3:// URLs; "
        "unset: AWS_ENDPOINT_URL or AWS itself",
    )
    stack_wait_s: float = Field(
        30.0,
        ge=0,
        description="how long `stack up` waits for a configured broker or Redis (set by "
        "FRAUD_KAFKA_BOOTSTRAP / FRAUD_REDIS_URL) before it fails; only the embedded default "
        "is started when missing",
    )
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
    gc_young_threshold: int = Field(
        100_000,
        ge=0,
        description="allocations between collections of the youngest generation in the "
        "hot-path processes; 0 = Python's own 700 (see services.gc_pauses)",
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_variables(cls, data: Any) -> Any:
        unknown = unknown_variables(os.environ, cls.model_fields)
        if unknown:
            problems = [
                f"{name} (did you mean {close}?)" if close else name for name, close in unknown
            ]
            raise ConfigError(
                f"unknown setting{'s' if len(unknown) > 1 else ''} {'; '.join(problems)}: "
                "every FRAUD_* variable must be a setting (`fraudctl config show` lists them)"
            )
        return data

    @model_validator(mode="after")
    def _check_connections(self) -> CommonSettings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ConfigError(
                f"FRAUD_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "FRAUD_KAFKA_SASL_MECHANISM, FRAUD_KAFKA_SASL_USERNAME and "
                "FRAUD_KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.kafka_sasl_mechanism or self.kafka_sasl_username):
            raise ConfigError(
                "SASL settings are set but FRAUD_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}: they would be ignored"
            )
        pairs = [
            ("KAFKA_SSL", self.kafka_ssl_cert_file, self.kafka_ssl_key_file),
            ("REDIS_SSL", self.redis_ssl_cert_file, self.redis_ssl_key_file),
        ]
        for name, cert, key in pairs:
            if (cert is None) != (key is None):
                raise ConfigError(f"FRAUD_{name}_CERT_FILE and FRAUD_{name}_KEY_FILE go together")
        for path in (
            self.kafka_ssl_ca_file,
            self.kafka_ssl_cert_file,
            self.kafka_ssl_key_file,
            self.redis_ssl_ca_file,
            self.redis_ssl_cert_file,
            self.redis_ssl_key_file,
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f"{path}: no such file (a TLS setting points at it)")
        return self

    def kafka(self) -> KafkaConnection:
        """The brokers and every client's security properties (librdkafka names)."""
        props: dict[str, Any] = {"security.protocol": self.kafka_security_protocol.lower()}
        if self.kafka_sasl_mechanism:
            props["sasl.mechanism"] = self.kafka_sasl_mechanism
            props["sasl.username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                props["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        optional = {
            "ssl.ca.location": self.kafka_ssl_ca_file,
            "ssl.certificate.location": self.kafka_ssl_cert_file,
            "ssl.key.location": self.kafka_ssl_key_file,
        }
        props.update({k: str(v) for k, v in optional.items() if v is not None})
        if self.kafka_ssl_key_password is not None:
            props["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        for key, value in self.kafka_config.items():
            props[key if "." in key else key.replace("_", ".")] = value
        return KafkaConnection(self.kafka_bootstrap, props)

    @property
    def redis_cluster(self) -> bool:
        """``FRAUD_REDIS_URL`` names a Redis Cluster (``redis-cluster://``)."""
        return self.redis_url.get_secret_value().split("://", 1)[0] in CLUSTER_SCHEMES

    def redis_options(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url`` beside the URL: TLS files."""
        options: dict[str, Any] = {}
        if self.redis_ssl_ca_file is not None:
            options["ssl_ca_certs"] = str(self.redis_ssl_ca_file)
        if self.redis_ssl_cert_file is not None:
            options["ssl_certfile"] = str(self.redis_ssl_cert_file)
            options["ssl_keyfile"] = str(self.redis_ssl_key_file)
        return options

    def event_time_bounds(self) -> EventTimeBounds:
        return EventTimeBounds(
            max_skew_s=self.event_time_max_skew_s,
            max_age_s=self.event_time_max_age_s or None,
        )

    def topics(self) -> Topics:
        """Topic names and layout (validated with the settings: :meth:`_check_topics`)."""
        layout = {_topic_base(key): value for key, value in self.topic_layout.items()}
        default = layout.pop(LAYOUT_DEFAULT, TopicLayout())

        def pick(attribute: str) -> dict[str, int]:
            return {
                base: found
                for base, one in layout.items()
                if (found := getattr(one, attribute)) is not None
            }

        return Topics(
            prefix=self.topic_prefix,
            partitions=pick("partitions"),
            replication=pick("replication_factor"),
            min_insync=pick("min_insync_replicas"),
            default_replication=default.replication_factor or 1,
            default_min_insync=default.min_insync_replicas,
        )

    @model_validator(mode="after")
    def _check_topics(self) -> CommonSettings:
        for key, value in self.topic_layout.items():
            base = _topic_base(key)
            if base == LAYOUT_DEFAULT and value.partitions is not None:
                raise ConfigError(
                    "FRAUD_TOPIC_LAYOUT: `default` sets replication only; partitions are "
                    "set per topic"
                )
            if base != LAYOUT_DEFAULT and base not in BY_BASE:
                raise ConfigError(
                    f"FRAUD_TOPIC_LAYOUT: no topic {key!r} (topics: {', '.join(BY_BASE)})"
                )
        problems = self.topics().problems()
        if problems:
            raise ConfigError(f"FRAUD_TOPIC_LAYOUT: {'; '.join(problems)}")
        return self

    @property
    def registry_dir(self) -> Path:
        return self.state_dir / "registry"

    def listens_for_promotions(self, wanted: bool | None) -> bool:
        """Whether a process reads ``model.events`` to check its champion at once:
        ``wanted`` when set, else only for a registry on object storage. There the poll
        is a request over the network; on a folder it is a ``stat`` every second, while a
        listening consumer keeps a fetch loop going (measured on the embedded broker, which
        does not hold an empty fetch: 25-30 % of a core per process, broker and client;
        docs/benchmarks/results.md has the scorer's p99 with and without it)."""
        if wanted is not None:
            return wanted
        return str(self.registry_url or "").startswith("s3://")

    def registry(self) -> Registry:
        """The model registry where ``registry_url`` puts it (default: a folder in state)."""
        from models.registry_open import open_registry

        return open_registry(
            self.registry_url or self.registry_dir,
            endpoint_url=self.s3_endpoint_url,
            cache_dir=self.state_dir / "registry-cache",
        )


def store_location(value: Path | str | None, default: Path) -> Path | str:
    """A store's root as set (an ``s3://`` URL stays a string), else ``default``."""
    if value is None or value == "":
        return default
    return value if str(value).startswith("s3://") else Path(value)


def _topic_base(key: str) -> str:
    """A layout key as a topic base name: environment variable names cannot hold dots."""
    key = key.lower()
    return key if key in BY_BASE or key == LAYOUT_DEFAULT else key.replace("_", ".")
