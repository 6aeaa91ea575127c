"""The one exception root of the project and the errors raised by the streaming layer.

Every package raises subclasses of :class:`FraudError`, so a service can catch one type
at its outermost loop and still act differently on the subclasses it knows.
"""

from __future__ import annotations


class FraudError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(FraudError):
    """A setting is missing or contradicts another one."""


class BrokerUnavailable(FraudError):
    """The Kafka-protocol broker did not answer within the allowed time."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"broker at {bootstrap} unavailable: {detail}")
        self.bootstrap = bootstrap
        self.detail = detail


class DeliveryFailed(FraudError):
    """The broker refused or timed out a produce; the caller must not commit offsets."""

    def __init__(self, topic: str, detail: str) -> None:
        super().__init__(f"delivery to {topic} failed: {detail}")
        self.topic = topic
        self.detail = detail


class StackError(FraudError):
    """The embedded stack (broker, Redis) could not be started, found or stopped."""
