"""Pacing of the live stream, on a fake clock with an in-memory producer and truth store."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from streams.serde import Rejection, transaction_decoder
from streams.simulator import Simulator, SimulatorConfig, stream_transactions


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


class FakeProducer:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str, bytes, str]] = []
        self.ids: set[str] = set()

    def produce(self, topic: str, value: bytes, key: str) -> None:
        self.sent.append((self.clock.now, topic, value, key))
        self.ids.add(json.loads(value)["transaction_id"])

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class DictTruth:
    def __init__(self, producer: FakeProducer) -> None:
        self.rows: dict[str, tuple[int, int]] = {}
        self.produced_before_truth = 0
        self.producer = producer

    def write_batch(self, rows: Iterable[tuple[str, int, int]]) -> int:
        batch = list(rows)
        for transaction_id, is_fraud, scenario in batch:
            self.produced_before_truth += transaction_id in self.producer.ids
            self.rows[transaction_id] = (is_fraud, scenario)
        return len(batch)


@pytest.mark.unit
def test_paced_on_slices_never_early_and_truth_first() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    truth = DictTruth(producer)
    rate, count, slice_s = 2_000.0, 3_000, 0.005
    report = stream_transactions(
        Simulator(SimulatorConfig.small(seed=3), run_id="pace"),
        bootstrap="unused:1",
        topic="t.transactions",
        rate=rate,
        count=count,
        truth=truth,
        new_pattern_after_s=0.75,
        slice_s=slice_s,
        clock=clock,
        sleep=clock.sleep,
        producer=producer,
    )
    t0 = 1000.0
    assert report.count == len(producer.sent) == count
    for i, (at, topic, _, _) in enumerate(producer.sent):
        assert topic == "t.transactions"
        assert i / rate <= at - t0 + 1e-9  # never before its time
        assert at - t0 <= i / rate + slice_s + 1e-9  # at most one slice late
    # handed over in slices of rate * slice_s = 10, not one by one
    assert len({at for at, *_ in producer.sent}) == count // 10 + 1
    assert report.achieved_rate == pytest.approx(rate, rel=1e-3)

    results = [transaction_decoder.decode(value) for _, _, value, _ in producer.sent]
    decoded = [d for d in results if not isinstance(d, Rejection)]
    assert len(decoded) == count
    assert [key for *_, key in producer.sent] == [d.card_id for d in decoded]
    ids = [d.transaction_id for d in decoded]
    assert set(ids) == set(truth.rows) and truth.produced_before_truth == 0
    # card testing only in rows handed over 0.75 s or more into the run
    first_on = next(i for i, (at, *_) in enumerate(producer.sent) if at - t0 >= 0.75 - 1e-9)
    assert report.card_testing_from == first_on
    assert abs(first_on - 0.75 * rate) <= rate * slice_s
    scenarios = [truth.rows[t][1] for t in ids]
    assert 4 not in scenarios[:first_on] and 4 in scenarios[first_on:]
    assert report.stats.per_scenario[4] == scenarios.count(4)


@pytest.mark.unit
def test_segments_sharing_a_source_never_repeat_a_transaction() -> None:
    """A segment ends mid-day; a fresh source per segment would replay that day's rest."""
    from streams.simulator.source import LiveSource

    simulator = Simulator(SimulatorConfig.small(seed=3), run_id="seg")
    clock = FakeClock()
    producer = FakeProducer(clock)
    source = LiveSource(simulator, first_day=5)
    for _ in range(6):
        stream_transactions(
            simulator,
            bootstrap="unused",
            topic="t",
            rate=1000.0,
            count=700,  # less than a simulated day: every segment ends mid-day
            producer=producer,
            clock=clock,
            sleep=clock.sleep,
            source=source,
        )
    assert len(producer.sent) == 4200
    assert len(producer.ids) == 4200
