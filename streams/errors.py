"""The one exception root of the project and the errors raised by the streaming layer.

Every package raises subclasses of :class:`FraudError`, so a service can catch one type
at its outermost loop and still act differently on the subclasses it knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FraudError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(FraudError):
    """A setting is missing or contradicts another one."""


class PayloadGuardMissing(FraudError):
    """The payload guard's C library was not built (``make setup`` / ``pip install -e .``)."""

    def __init__(self, source: str) -> None:
        super().__init__(f"payload guard not built from {source}: run `make setup`")
        self.source = source


class BrokerUnavailable(FraudError):
    """The Kafka-protocol broker did not answer within the allowed time."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"broker at {bootstrap} unavailable: {detail}")
        self.bootstrap = bootstrap
        self.detail = detail


class TopicLayoutRefused(FraudError):
    """The broker refused to create a topic as the settings lay it out (e.g. a replication
    factor above its number of brokers)."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(
            f"broker at {bootstrap} refused the topic layout: {detail} "
            "(FRAUD_TOPIC_LAYOUT sets partitions, replication_factor, min_insync_replicas)"
        )
        self.bootstrap = bootstrap
        self.detail = detail


class DeliveryFailed(FraudError):
    """The broker refused or timed out a produce; the caller must not commit offsets.

    ``records`` are the failed records (``streams.producer.FailedRecord``) when known: the
    ones to send again, and only those."""

    def __init__(self, topic: str, detail: str, records: Sequence[Any] = ()) -> None:
        super().__init__(f"delivery to {topic} failed: {detail}")
        self.topic = topic
        self.detail = detail
        self.records = list(records)


class DeliveryRefused(DeliveryFailed):
    """A delivery failed for a reason sending again cannot fix (the topic is gone, writing
    is not authorised, the record is refused as it is, the producer hit a fatal error):
    stop and say why, do not loop."""


class StackError(FraudError):
    """The embedded stack (broker, Redis) could not be started, found or stopped."""


class MembershipLost(FraudError):
    """The consumer no longer holds the partitions of the work in hand (fenced, revoked,
    dropped from its group): that work must not be written or committed; its records
    replay at their new owner."""
