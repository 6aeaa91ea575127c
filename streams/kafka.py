"""Kafka client configuration and admin helpers (plain Kafka protocol, any broker).

Latency-tuned defaults, chosen for a p99 far below 50 ms at batch sizes of ~500:

* consumer ``fetch.wait.max.ms=5`` - the broker answers a fetch after at most 5 ms even
  when fewer than ``fetch.min.bytes`` are ready (the default 500 ms would sit on the SLA);
* consumer ``queued.max.messages.kbytes=8192`` - bound librdkafka's prefetch (the default
  64 MB doubled the scorer's CPU in the prototype) and give back-pressure a real limit;
* consumer ``fetch.max.bytes`` = :data:`FETCH_MAX_BYTES` (8 MiB) - the queue bound is
  checked before a fetch is sent, so one fetch response comes on top of it: with
  librdkafka's default (50 MB) a consumer catching up on lag held up to 50 MB more. A
  record larger than this still arrives: the broker returns the first batch of a fetch
  whatever its size (KIP-74), and ``max.partition.fetch.bytes`` stays large enough for the
  largest record a topic admits;
* consumer ``queued.min.messages=1`` + ``fetch.queue.backoff.ms=1`` - stop prefetching
  while records wait in the local queue, and look again every millisecond: the consumer
  drains its queue every batch, so nothing waits longer, and the fetch loop stops costing
  CPU while a batch is worked on (docs/adr/0003-polling.md);
* producer ``linger.ms=1`` - batch what arrives within a millisecond, no more (a
  producer that ends its bursts with :meth:`~streams.producer.AckedProducer.send_queued`,
  as the scorer does, lingers longer: librdkafka's broker thread polls with a zero
  timeout while a linger deadline less than a millisecond away is pending, so a 1 ms
  linger kept it spinning through every burst);
* producer ``enable.idempotence=true`` + ``acks=all`` - no duplicates from retries, and a
  delivery report means the write is durable, so committing offsets after it is safe;
* ``partition.assignment.strategy`` - ``roundrobin`` (eager) by default, because the
  embedded noida-db broker orphans partitions under ``cooperative-sticky``; on Apache
  Kafka set ``FRAUD_KAFKA_ASSIGNMENT_STRATEGY=cooperative-sticky`` (docker-compose.yml
  does) so a rebalance moves only the partitions that must move
  (docs/adr/0004-assignment-strategy.md). Either way ``group.instance.id`` (static
  membership) lets a restarted process reclaim its partitions at once, without a rebalance.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import BrokerUnavailable, TopicLayoutRefused
from streams.topics import Topics, TopicSpec

ClientConfig = dict[str, Any]
AssignmentStrategy = Literal["roundrobin", "range", "cooperative-sticky"]
DEFAULT_ASSIGNMENT_STRATEGY: AssignmentStrategy = "roundrobin"
FETCH_MAX_BYTES = 8 * 1024 * 1024
"""A consumer's bound on one fetch response (the size of its prefetch queue's bound)."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to reach them: the bootstrap list plus the librdkafka
    properties every client of the deployment needs (``security.protocol``, SASL, CA file,
    anything set through ``FRAUD_KAFKA_CONFIG``). Built from settings
    (:meth:`services.settings.CommonSettings.kafka`); a plain bootstrap string is the same
    as a connection with no extra properties."""

    bootstrap: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:  # logs and error messages name the brokers, never the secrets
        return self.bootstrap

    def __repr__(self) -> str:
        return f"KafkaConnection({self.bootstrap!r}, {sorted(self.properties)})"


Endpoint = str | KafkaConnection


def connection(endpoint: Endpoint) -> KafkaConnection:
    return endpoint if isinstance(endpoint, KafkaConnection) else KafkaConnection(endpoint)


def _base(endpoint: Endpoint) -> ClientConfig:
    """``bootstrap.servers`` and the connection's properties: the start of every config."""
    conn = connection(endpoint)
    return {"bootstrap.servers": conn.bootstrap, **conn.properties}


def producer_config(
    endpoint: Endpoint,
    *,
    client_id: str,
    defaults: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ClientConfig:
    """The deployment's producer config; ``defaults`` replace the latency defaults below,
    the connection's properties override both (an operator's setting wins), ``overrides``
    override everything."""
    config: ClientConfig = {
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "batch.num.messages": 1000,
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 256 * 1024,
        "message.timeout.ms": 30_000,
        "socket.nagle.disable": True,
        "message.max.bytes": 17 * 1024 * 1024,
    }
    config.update(defaults or {})
    config.update(_base(endpoint))
    config.update(overrides)
    return config


def consumer_config(
    endpoint: Endpoint,
    *,
    group_id: str,
    client_id: str,
    instance_id: str | None = None,
    assignment_strategy: AssignmentStrategy = DEFAULT_ASSIGNMENT_STRATEGY,
    **overrides: Any,
) -> ClientConfig:
    config: ClientConfig = {
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 5,
        "fetch.min.bytes": 1,
        "queued.max.messages.kbytes": FETCH_MAX_BYTES // 1024,  # 8192: one bound for both
        "fetch.max.bytes": FETCH_MAX_BYTES,
        "queued.min.messages": 1,
        "fetch.queue.backoff.ms": 1,
        # Large enough for the biggest record a topic admits (see TopicSpec.max_message_bytes).
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "partition.assignment.strategy": assignment_strategy,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 300_000,
        "socket.nagle.disable": True,
    }
    config.update(_base(endpoint))
    if instance_id:
        config["group.instance.id"] = instance_id
    config.update(overrides)
    return config


def admin_client(endpoint: Endpoint, *, quiet: bool = False) -> AdminClient:
    config: ClientConfig = {"socket.timeout.ms": 5000, **_base(endpoint)}
    if quiet:  # a probe: connection-refused lines from librdkafka would only be noise
        config["log_level"] = 0
    return AdminClient(config)


def _tcp_open(bootstrap: str, timeout_s: float) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_for_broker(endpoint: Endpoint, timeout_s: float = 30.0) -> None:
    """Block until the broker answers a metadata request, else raise BrokerUnavailable."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    bootstrap = connection(endpoint).bootstrap
    admin = admin_client(endpoint, quiet=True)
    while time.monotonic() < deadline:
        if not _tcp_open(bootstrap, timeout_s=0.5):
            last = "connection refused"
            time.sleep(0.2)
            continue
        try:
            admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BrokerUnavailable(bootstrap, last)


def broker_reachable(endpoint: Endpoint, timeout_s: float = 2.0) -> bool:
    try:
        wait_for_broker(endpoint, timeout_s)
    except BrokerUnavailable:
        return False
    return True


def ensure_topics(
    endpoint: Endpoint,
    topics: Topics,
    *,
    only: Iterable[str] | None = None,
    extra_config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create the deployment's topics that do not exist yet (idempotent).

    Returns ``{topic: "created" | "exists"}``.
    """
    wanted = [(name, spec) for name, spec in topics.all() if only is None or spec.base in only]
    admin = admin_client(endpoint)
    new = [new_topic(topics, spec, extra_config) for _, spec in wanted]
    try:
        result = _create_topics(admin, new, timeout_s)
    except KafkaException as exc:
        raise TopicLayoutRefused(str(endpoint), str(exc.args[0])) from exc
    _wait_for_topics(admin, [name for name, _ in wanted], timeout_s)
    return result


def new_topic(
    topics: Topics, spec: TopicSpec, extra_config: Mapping[str, str] | None = None
) -> NewTopic:
    """The creation request of one topic: the deployment's layout and the spec's limits."""
    config = {
        "retention.ms": str(spec.retention_ms),
        "max.message.bytes": str(spec.max_message_bytes),
    }
    insync = topics.min_insync_replicas(spec)
    if insync is not None:
        config["min.insync.replicas"] = str(insync)
    return NewTopic(
        topics.name(spec),
        num_partitions=topics.partition_count(spec),
        replication_factor=topics.replication_factor(spec),
        config={**config, **(extra_config or {})},
    )


def describe_topics(
    endpoint: Endpoint, topics: Topics, timeout_s: float = 10.0
) -> list[TopicState]:
    """What the broker holds of each topic of the deployment, beside what settings ask."""
    metadata = admin_client(endpoint).list_topics(timeout=timeout_s)
    out = []
    for name, spec in topics.all():
        found = metadata.topics.get(name)
        partitions = list(found.partitions.values()) if found is not None else []
        out.append(
            TopicState(
                name=name,
                partitions=topics.partition_count(spec),
                replication_factor=topics.replication_factor(spec),
                min_insync_replicas=topics.min_insync_replicas(spec),
                existing_partitions=len(partitions) if found is not None else None,
                existing_replicas=min((len(p.replicas) for p in partitions), default=0),
            )
        )
    return out


@dataclass(frozen=True)
class TopicState:
    """One topic as settings want it and as the broker has it (None: it does not exist)."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int | None
    existing_partitions: int | None
    existing_replicas: int

    @property
    def differs(self) -> str:
        """How the existing topic differs from the settings ('' when it does not).
        Partitions are never added here: that would move keys (cards) between
        partitions, and with them the scorer that owns a card's state."""
        if self.existing_partitions is None:
            return "missing"
        found = []
        if self.existing_partitions != self.partitions:
            found.append(f"{self.existing_partitions} partitions, settings say {self.partitions}")
        if self.existing_replicas != self.replication_factor:
            found.append(
                f"{self.existing_replicas} replicas, settings say {self.replication_factor}"
            )
        return "; ".join(found)


def _create_topics(admin: AdminClient, new: list[NewTopic], timeout_s: float) -> dict[str, str]:
    """Create ``new``; a topic that already exists is fine. ``{topic: "created" | "exists"}``."""
    result: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            result[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            result[name] = "exists"
    return result


def _wait_for_topics(admin: AdminClient, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=5)
        if all(name in metadata.topics and metadata.topics[name].partitions for name in names):
            return
        time.sleep(0.1)
    raise BrokerUnavailable(str(admin), f"topics {names} not visible after {timeout_s}s")


def warm_up_topic(topic: str) -> str:
    """The topic :func:`warm_up_producer` writes to for a producer of ``topic``."""
    return f"{topic}.warmup"


def warm_up_producer(
    producer: Producer, endpoint: Endpoint, topic: str, timeout_s: float = 10.0
) -> None:
    """Before a producer of ``topic`` starts: write one record to ``warm_up_topic(topic)``
    (created if missing, short retention) and wait for its ack.

    An idempotent producer's first write waits for its producer id, which librdkafka asks
    for on a 500 ms timer when no broker connection is up yet at creation: the first
    records of a fresh producer are acknowledged ~0.5 s late. A load generator calls this
    before its clock starts, so that start-up wait is not measured as the service's latency.
    """
    target = warm_up_topic(topic)
    spec = NewTopic(
        target, num_partitions=1, replication_factor=1, config={"retention.ms": "60000"}
    )
    try:
        _create_topics(admin_client(endpoint), [spec], timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailable(str(endpoint), str(exc)) from exc
    producer.produce(target, b"warm-up")
    if producer.flush(timeout_s):
        raise BrokerUnavailable(str(endpoint), f"warm-up record to {target} not acknowledged")


def delete_topics(endpoint: Endpoint, names: Iterable[str], timeout_s: float = 30.0) -> list[str]:
    """Delete the named topics that exist; return the ones deleted."""
    admin = admin_client(endpoint)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    doomed = [name for name in names if name in existing]
    if not doomed:
        return []
    for future in admin.delete_topics(doomed, operation_timeout=timeout_s).values():
        future.result(timeout=timeout_s)
    return doomed
