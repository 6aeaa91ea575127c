"""What one Locust process shares between its users: options, the feed, the Kafka side.

Built once per process at test start (:func:`start`), torn down at quit (:func:`close`).
Users reach it through :func:`current`. A master process of a distributed run has no
users and builds nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from loadtest.feed import TransactionFeed
from loadtest.kafka_load import KafkaLoad
from loadtest.options import LoadOptions, load_options
from services.settings import CommonSettings


@dataclass
class Runtime:
    options: LoadOptions
    settings: CommonSettings
    feed: TransactionFeed
    kafka: KafkaLoad | None = None


_runtime: Runtime | None = None


def start(environment: Any, *, with_kafka: bool) -> Runtime:
    """The process's runtime, built on the first call; the Kafka side on first need."""
    global _runtime
    if _runtime is None:
        options = load_options(environment.parsed_options)
        feed = TransactionFeed(world=options.world, seed=options.seed)
        _runtime = Runtime(options, CommonSettings(), feed)
    if with_kafka and _runtime.kafka is None:
        topics = _runtime.settings.topics()

        def report(name: str, response_time_ms: float, error: Exception | None) -> None:
            environment.events.request.fire(
                request_type="kafka",
                name=name,
                response_time=response_time_ms,
                response_length=0,
                exception=error,
                context={},
            )

        kafka = KafkaLoad(
            bootstrap=_runtime.settings.kafka_bootstrap,
            transactions_topic=topics.transactions,
            scored_topic=topics.scored,
            feed=_runtime.feed,
            report=report,
            decision_timeout_s=_runtime.options.decision_timeout_s,
        )
        kafka.start()  # raises BrokerUnavailable / ConfigError: then no Kafka side at all
        _runtime.kafka = kafka
    return _runtime


def current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the load-test runtime starts with the test (test_start event)")
    return _runtime


def finish() -> None:
    """End of a test: settle every outstanding transaction (Kafka users)."""
    if _runtime is not None and _runtime.kafka is not None:
        _runtime.kafka.finish()


def close() -> None:
    global _runtime
    if _runtime is not None and _runtime.kafka is not None:
        _runtime.kafka.close()
    _runtime = None


class Pacer:
    """Exact pacing of one user: the i-th task is due at ``t0 + i / rate``.

    A user that fell behind catches up, but never by more than ``max_burst_s`` worth of
    tasks (after a stall the schedule restarts instead of firing a burst).
    """

    def __init__(self, rate: float, max_burst_s: float = 1.0, clock: Any = time.monotonic):
        self.interval = 1.0 / rate
        self.max_burst_s = max_burst_s
        self._clock = clock
        self._due = clock()

    def wait(self) -> float:
        """Seconds to sleep before the next task."""
        now = self._clock()
        self._due += self.interval
        if self._due < now - self.max_burst_s:
            self._due = now
        return max(0.0, self._due - now)
