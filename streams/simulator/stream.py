"""Live stream: simulated transactions produced to Kafka at a paced rate, truth to Redis.

Pacing: the i-th transaction (0-based) is due at ``t0 + i / rate`` on a monotonic clock.
Each loop hands over everything due, serves delivery reports (``poll(0)``) and sleeps at
most one slice (``slice_s``) until the next one is due; a slow slice is caught up in the
next one, so the long-run rate is exact. ``event_time`` is the wall clock at hand-over:
simulated days are replayed in their order, compressed to the requested rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from streams.errors import ConfigError, DeliveryFailed
from streams.kafka import Endpoint, producer_config, warm_up_producer
from streams.serde import encode
from streams.simulator.simulator import Simulator
from streams.simulator.source import LiveSource
from streams.simulator.stats import FraudStats

MAX_RATE = 50_000.0


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the stream uses (a fake in unit tests)."""

    def produce(self, topic: str, value: bytes, key: str) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


class TruthWriter(Protocol):
    """Where ground truth goes: :class:`GroundTruthStore`, or a dict-backed fake."""

    def write_batch(self, rows: Iterable[tuple[str, int, int]]) -> int: ...


@dataclass
class StreamReport:
    target_rate: float
    count: int = 0
    elapsed_s: float = 0.0  # first hand-over to last hand-over
    flush_s: float = 0.0  # last hand-over to the last delivery report
    max_behind_s: float = 0.0  # worst lag of the pacer behind schedule
    backpressure_waits: int = 0
    delivery_failures: int = 0
    simulated_days: int = 0
    card_testing_from: int | None = None  # index of the first row sent with scenario 4 on
    stats: FraudStats = field(default_factory=FraudStats)

    @property
    def achieved_rate(self) -> float:
        """Hand-over rate: ``count - 1`` intervals over the elapsed time (exact pacing = target)."""
        return (self.count - 1) / self.elapsed_s if self.count > 1 and self.elapsed_s else 0.0

    @property
    def delivered_rate(self) -> float:
        """Rate including the final flush: count over (elapsed + flush)."""
        total = self.elapsed_s + self.flush_s
        return self.count / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "delivered_rate": round(self.delivered_rate, 1),
            "count": self.count,
            "elapsed_s": round(self.elapsed_s, 4),
            "flush_s": round(self.flush_s, 4),
            "max_behind_ms": round(self.max_behind_s * 1000, 2),
            "backpressure_waits": self.backpressure_waits,
            "delivery_failures": self.delivery_failures,
            "simulated_days": self.simulated_days,
            "card_testing_from": self.card_testing_from,
            "stats": self.stats.as_dict(),
        }


def planned_count(rate: float, count: int | None, duration_s: float | None) -> int:
    """How many transactions a run sends: ``count``, else ``rate * duration_s``."""
    if count is not None:
        return int(count)
    if duration_s is not None:
        return round(rate * duration_s)
    raise ConfigError("give count or duration_s")


def stream_transactions(
    simulator: Simulator,
    *,
    bootstrap: Endpoint,
    topic: str,
    rate: float,
    count: int | None = None,
    duration_s: float | None = None,
    truth: TruthWriter | None = None,
    new_pattern_after_s: float | None = None,
    first_day: int = 0,
    slice_s: float = 0.005,
    client_id: str = "simulator",
    producer_overrides: dict[str, Any] | None = None,
    flush_timeout_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    producer: ProducerLike | None = None,
    warm_up: bool = False,
    source: LiveSource | None = None,
) -> StreamReport:
    """Produce ``count`` (or ``rate * duration_s``) transactions to ``topic``, key=card_id.

    Ground truth of each batch goes to ``truth`` before the batch is produced. Card
    testing (scenario 4) starts ``new_pattern_after_s`` seconds into the run (never if
    None). Raises :class:`DeliveryFailed` if any message was not acknowledged.
    ``producer`` replaces the Kafka producer built from ``bootstrap`` (unit tests).
    ``source`` continues an earlier call's rows (``first_day`` is then ignored): a caller
    streaming in segments passes one source to all of them, so a segment never repeats
    rows (and transaction ids) of the day its predecessor was in.
    ``warm_up``: before the clock starts, the built producer is warmed up (see
    :func:`streams.kafka.warm_up_producer`), so a measuring caller does not see the
    producer's own start-up as latency.
    """
    if not 0 < rate <= MAX_RATE:
        raise ConfigError(f"rate must be within (0, {MAX_RATE:.0f}]")
    total = planned_count(rate, count, duration_s)
    if total < 0:
        raise ConfigError("count and duration must be >= 0")
    report = StreamReport(target_rate=rate)
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    if producer is None:
        config = producer_config(bootstrap, client_id=client_id, **(producer_overrides or {}))
        config["on_delivery"] = on_delivery
        built = Producer(config)
        if warm_up:
            warm_up_producer(built, bootstrap, topic)
        producer = built
    source = source or LiveSource(simulator, first_day=first_day)
    t0 = clock()
    last = t0
    sent = 0
    tick = 0
    while sent < total:
        elapsed = clock() - t0
        due = min(total, int(elapsed * rate) + 1)
        if due > sent:
            report.max_behind_s = max(report.max_behind_s, elapsed - sent / rate)
            card_testing = new_pattern_after_s is not None and elapsed >= new_pattern_after_s
            if card_testing and report.card_testing_from is None:
                report.card_testing_from = sent
            _hand_over(source, due - sent, card_testing, truth, producer, topic, report)
            sent = due
            last = clock()
        producer.poll(0)
        # wake at the next slice boundary (strictly later than the last one, so rounding
        # can never stall the loop), or later still if nothing is due by then
        elapsed = clock() - t0
        tick = max(tick + 1, int(elapsed / slice_s) + 1)
        delay = max(tick * slice_s, sent / rate) - elapsed
        if delay > 0:
            sleep(delay)
    report.count = sent
    report.elapsed_s = last - t0
    remaining = producer.flush(flush_timeout_s)
    report.flush_s = clock() - last
    report.simulated_days = source.days_generated
    report.delivery_failures = len(failures) + remaining
    if remaining:
        raise DeliveryFailed(topic, f"{remaining} messages not acknowledged in {flush_timeout_s}s")
    if failures:
        raise DeliveryFailed(topic, f"{len(failures)} messages failed, first: {failures[0]}")
    return report


def _hand_over(
    source: LiveSource,
    n: int,
    card_testing: bool,
    truth: TruthWriter | None,
    producer: ProducerLike,
    topic: str,
    report: StreamReport,
) -> None:
    """Write the truth of the next ``n`` rows, then produce them (event_time = now)."""
    event_time = datetime.now(UTC)
    produce = producer.produce
    for batch, index in source.take(n, card_testing=card_testing):
        if truth is not None:
            truth.write_batch(
                zip(
                    [batch.transaction_id[i] for i in index.tolist()],
                    batch.is_fraud[index].tolist(),
                    batch.scenario[index].tolist(),
                    strict=True,
                )
            )
        for tx in source.transactions(batch, index, event_time):
            value = encode(tx)
            while True:
                try:
                    produce(topic, value, tx.card_id)
                    break
                except BufferError:
                    report.backpressure_waits += 1
                    producer.poll(0.005)
        report.stats.add(batch.scenario[index])
