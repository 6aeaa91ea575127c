"""Rows for the live stream: chunking across days, the scenario 4 switch, valid events."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from streams.serde import Rejection, encode, transaction_decoder
from streams.simulator import Simulator, SimulatorConfig
from streams.simulator.source import LiveSource

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(SimulatorConfig.small(seed=5), run_id="unit")


def _ids(segments: list) -> list[str]:
    return [batch.transaction_id[i] for batch, index in segments for i in index.tolist()]


def test_chunks_cross_days_without_loss_or_repeat(simulator: Simulator) -> None:
    source = LiveSource(simulator, first_day=3)
    taken: list[str] = []
    for size in (1, 7, 500, 999, 1, 1234):
        segments = source.take(size, card_testing=True)
        assert sum(len(index) for _, index in segments) == size
        taken.extend(_ids(segments))
    days = simulator.days(3, source.days_generated, card_testing=True)
    expected = [t for day in days for t in day.transaction_id]
    assert taken == expected[: len(taken)]
    assert source.days_generated >= 3


def test_card_testing_rows_only_once_switched_on(simulator: Simulator) -> None:
    source = LiveSource(simulator)
    off = source.take(3_000, card_testing=False)
    assert all((batch.scenario[index] != 4).all() for batch, index in off)
    on = source.take(3_000, card_testing=True)
    scenarios = np.concatenate([batch.scenario[index] for batch, index in on])
    assert (scenarios == 4).sum() > 0


def test_live_transactions_are_retimed_and_decode(simulator: Simulator) -> None:
    source = LiveSource(simulator)
    now = datetime.now(UTC)
    count = 0
    for batch, index in source.take(2_000, card_testing=True):
        for tx in source.transactions(batch, index, now):
            decoded = transaction_decoder.decode(encode(tx))
            assert not isinstance(decoded, Rejection), decoded
            assert decoded == tx
            assert decoded.event_time == now
            count += 1
    assert count == 2_000
