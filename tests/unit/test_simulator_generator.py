"""The generator itself: world geometry, per-day determinism, compromise schedules."""

from __future__ import annotations

import re

import numpy as np
import pytest

from streams.errors import FraudError
from streams.pan import contains_pan
from streams.simulator import InvalidSimulatorConfig, Simulator, SimulatorConfig
from streams.simulator.day import active_compromised, per_day_count

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(SimulatorConfig.small(seed=11))


def test_ids_follow_the_documented_formats(simulator: Simulator) -> None:
    world = simulator.world
    assert world.card_ids[:2] == ["K000000", "K000001"]
    assert world.customer_ids[-1] == "U000499"
    assert world.terminal_ids[-1] == "T000999"
    batch = simulator.day(0)
    assert all(re.fullmatch(r"tx[0-9a-f]{8}-[0-9a-f]{8}", t) for t in batch.transaction_id)
    assert not any(contains_pan(t) for t in batch.transaction_id)


def test_a_day_is_the_same_alone_or_in_sequence(simulator: Simulator) -> None:
    in_sequence = list(simulator.days(0, 4))[3]
    alone = Simulator(SimulatorConfig.small(seed=11)).day(3)
    assert alone.transaction_id == in_sequence.transaction_id
    np.testing.assert_array_equal(alone.amount, in_sequence.amount)
    np.testing.assert_array_equal(alone.scenario, in_sequence.scenario)


def test_run_id_changes_transaction_ids_only(simulator: Simulator) -> None:
    other = Simulator(SimulatorConfig.small(seed=11), run_id="r2")
    a, b = simulator.day(1), other.day(1)
    assert set(a.transaction_id).isdisjoint(b.transaction_id)
    np.testing.assert_array_equal(np.sort(a.amount), np.sort(b.amount))


def test_customers_shop_within_radius_and_card_testers_outside(simulator: Simulator) -> None:
    batch = simulator.day(1, card_testing=True)
    world = simulator.world
    distance = world.distance(batch.customer, batch.terminal)
    testing = batch.scenario == 4
    assert testing.sum() >= 4  # 0.5 cards a day: one burst of 4..10 on odd days
    assert (distance[~testing] < 5.0).all()
    assert (distance[testing] >= 5.0).all()
    times = batch.time_us[testing] / 1e6
    assert times.max() - times.min() < 86_400
    assert (np.diff(batch.time_us) >= 0).all()


def test_compromise_schedule_is_exact_for_fractional_rates() -> None:
    assert [per_day_count(0.2, d) for d in range(10)] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert sum(per_day_count(2.0, d) for d in range(28)) == 56
    active = active_compromised(1, 2, 10_000, 2.0, day=100, duration_days=28)
    assert 50 <= len(active) <= 56  # 56 picks, a few may repeat
    again = active_compromised(1, 2, 10_000, 2.0, day=100, duration_days=28)
    np.testing.assert_array_equal(active, again)


def test_handbook_terminal_density(simulator: Simulator) -> None:
    counts = simulator.world.terminal_counts()
    # ~ pi * 5^2 * 1000 / 100^2 = 7.85 terminals per customer (fewer near the border)
    assert 6.5 <= counts.mean() <= 8.5
    assert np.all(simulator.world.amount_std == simulator.world.amount_mean / 2)


def test_invalid_config_is_a_typed_error() -> None:
    with pytest.raises(InvalidSimulatorConfig) as info:
        SimulatorConfig.small(card_testing_burst=(5, 2), seed=-1)
    assert isinstance(info.value, FraudError)
    assert len(info.value.problems) == 2
