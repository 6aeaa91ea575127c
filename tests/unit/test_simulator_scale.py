"""The simulator at production card counts: ids past six digits, terminals that scale,
neighbourhoods found through the cell grid, and the handbook-sized world unchanged."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from streams.simulator import InvalidSimulatorConfig, Simulator, SimulatorConfig
from streams.simulator.world import IdColumn, build_world

pytestmark = pytest.mark.unit

DEFAULT_WORLD_SHA256 = "e27b8dc2c8576c63c19030d0ca98156e346c224028da900c4489db797036fe27"
"""The default world and its days 0-2 (with card testing) as generated before the cell
grid: the grid must find exactly the terminals the full distance matrix found."""


def _fingerprint(sim: Simulator) -> str:
    w = sim.world
    h = hashlib.sha256()
    arrays = (w.customer_x, w.customer_y, w.amount_mean, w.daily_rate, w.terminal_x)
    for a in (*arrays, w.terminal_y, w.offsets, np.asarray(w.neighbours, dtype=np.int64)):
        h.update(np.ascontiguousarray(a).tobytes())
    names = (w.terminal_channel, w.terminal_mcc, w.terminal_country)
    for column in (*names, list(w.customer_ids), list(w.card_ids), list(w.terminal_ids)):
        h.update("|".join(column).encode())
    for d in (0, 1, 2):
        b = sim.day(d, card_testing=True)
        for a in (b.time_us, b.customer, b.terminal, b.amount, b.is_fraud, b.scenario):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(np.ascontiguousarray(b.label_delay_us).tobytes())
        h.update("|".join(b.transaction_id).encode())
        h.update(repr(b.device).encode())
    return h.hexdigest()


def test_the_default_world_is_byte_for_byte_what_it_was() -> None:
    assert _fingerprint(Simulator(SimulatorConfig.default())) == DEFAULT_WORLD_SHA256


def test_scaled_to_the_handbook_card_count_is_the_default() -> None:
    assert SimulatorConfig.scaled(5_000) == SimulatorConfig.default()


def test_terminals_grid_and_rates_scale_with_the_cards() -> None:
    config = SimulatorConfig.scaled(2_000_000)
    assert (config.n_customers, config.n_terminals) == (2_000_000, 4_000_000)
    assert config.grid_size == pytest.approx(2_000.0)  # same density as 10,000 on 100 x 100
    assert config.radius == 5.0
    assert config.compromised_terminals_per_day == pytest.approx(800.0)
    assert config.card_testing_per_day == pytest.approx(2_000.0)


def test_ids_at_two_million_cards_are_unique_and_well_formed() -> None:
    config = SimulatorConfig.scaled(2_000_000)
    cards, terminals = IdColumn("K", config.n_customers), IdColumn("T", config.n_terminals)
    every_card = cards[:]
    assert len(set(every_card)) == 2_000_000
    assert all(re.fullmatch(r"K\d{6,7}", c) for c in every_card[::997])
    assert (cards[0], cards[999_999], cards[1_000_000], cards[-1]) == (
        "K000000",
        "K999999",
        "K1000000",
        "K1999999",
    )
    assert terminals[-1] == "T3999999"
    assert terminals.take(np.array([5, 3_999_999])) == ["T000005", "T3999999"]
    with pytest.raises(IndexError):
        cards[2_000_000]


def test_a_world_past_six_digits_shops_nearby_with_unique_ids() -> None:
    # few customers, 1.1 million terminals at the handbook's density: terminal ids widen
    config = SimulatorConfig(
        seed=5, n_customers=2_000, n_terminals=1_100_000, grid_size=1_000.0 * 1.1**0.5
    )
    sim = Simulator(config)
    world = sim.world
    counts = world.terminal_counts()
    assert 70 <= counts.mean() <= 80  # pi * 5^2 at density 1, fewer at the border
    # the grid finds exactly the terminals a full distance scan finds
    for c in (0, 17, 1_999):
        d2 = (world.customer_x[c] - world.terminal_x) ** 2
        d2 += (world.customer_y[c] - world.terminal_y) ** 2
        np.testing.assert_array_equal(world.terminals_of(c), np.flatnonzero(d2 < 25.0))
    batch = sim.day(0, card_testing=True)
    assert len(set(batch.transaction_id)) == len(batch)
    assert (world.distance(batch.customer, batch.terminal)[batch.scenario != 4] < 5.0).all()
    ids = world.terminal_ids.take(batch.terminal)
    assert any(len(t) == 8 for t in ids) and all(re.fullmatch(r"T\d{6,7}", t) for t in ids)


def test_more_transactions_a_day_than_ids_allow_is_refused() -> None:
    with pytest.raises(InvalidSimulatorConfig, match="transactions a day"):
        SimulatorConfig.scaled(4_000_000)


def test_neighbourhoods_are_int32_while_terminal_indices_fit() -> None:
    world = build_world(SimulatorConfig.small(seed=2))
    assert world.neighbours.dtype == np.int32
    assert world.pick_terminals(np.array([0]), np.array([0])).dtype == np.int64
