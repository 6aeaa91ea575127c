"""The card-count benchmark's plumbing on a small world: its own Redis, the seeded
history, the memory and cache numbers, the targets (no speed is asserted)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis

from features.kernels import DAY_US
from features.profiles.layout import FeastLayout
from features.realtime.cache import CardCache, CardEntry
from features.realtime.layout import CARD_RECORD, TRAILER, card_key, terminal_key
from features.realtime.redis_store import RedisFeatureStore
from loadtest.bench_cards import (
    backlog_transactions,
    cards_line,
    command_time_per_tx,
    own_redis,
    seed_state,
)
from loadtest.bench_scorer import card_targets
from loadtest.scorer_probe import ProbedScorer
from streams.simulator import Simulator, SimulatorConfig
from streams.simulator.day import base_rows
from streams.simulator.history import DEFAULT_START
from streams.simulator.tables import day_start_us

pytestmark = pytest.mark.integration


def test_seeded_world_holds_every_card_terminal_and_profile(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig.scaled(300, seed=8))
    days = 6
    with own_redis(tmp_path) as (url, _):
        client = redis.Redis.from_url(url)
        store = RedisFeatureStore(client, prefix="c")
        layout = FeastLayout(project="p", verify_with_feast=False)
        report = seed_state(client, store, layout, sim, days=days, log=lambda _: None)
        rows = [base_rows(sim.world, sim.config, d) for d in range(days)]
        customers = np.concatenate([r[1] for r in rows])
        terminals = np.unique(np.concatenate([r[2] for r in rows]))
        assert report.events == len(customers)
        assert report.cards == len(np.unique(customers))
        assert report.terminals == len(terminals)
        assert client.dbsize() == report.cards + report.terminals + sim.world.n_terminals
        numbers = report.as_dict()
        assert numbers["redis_bytes_per_card"] > 32 * numbers["events_per_card"]
        assert numbers["redis_bytes_per_terminal"] > 0
        assert numbers["redis_profile_bytes_per_terminal"] > 0
        # a card's records: its own rows, in time order, inside the seeded days
        card = int(customers[0])
        value = client.get(card_key("c", sim.world.card_ids[card]))
        assert value is not None
        records = np.frombuffer(value[:-TRAILER], dtype=CARD_RECORD)
        assert len(records) == int((customers == card).sum())
        assert (np.diff(records["t"]) >= 0).all()
        assert (records["seq"] == np.arange(len(records))).all()
        start = day_start_us(DEFAULT_START, 0)
        assert start <= records["t"].min() and records["t"].max() < start + days * DAY_US
        assert client.exists(terminal_key("c", sim.world.terminal_ids[int(terminals[0])]))
        assert client.exists(layout.entity_key(sim.world.terminal_ids[0]))
        assert client.pttl(card_key("c", sim.world.card_ids[card])) > 0
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_timeout=1).ping()  # stopped with the block


def test_redis_time_is_split_by_command_per_transaction(tmp_path: Path) -> None:
    with own_redis(tmp_path) as (url, _):
        client = redis.Redis.from_url(url)
        client.config_resetstat()
        for i in range(40):
            client.set(f"k{i}", "v")
        client.mget([f"k{i}" for i in range(40)])
        split = command_time_per_tx(client, decided=20)
    assert split["set"]["calls_per_tx"] == 2.0
    assert split["mget"]["calls_per_tx"] == 0.05
    assert split["set"]["us_per_tx"] == pytest.approx(
        40 * split["set"]["us_per_call"] / 20, abs=0.02
    )
    assert all(v["us_per_tx"] >= 0 for v in split.values())
    shares = [v["us_per_tx"] for v in split.values()]
    assert shares == sorted(shares, reverse=True)


def test_backlog_follows_the_history_in_simulated_time() -> None:
    sim = Simulator(SimulatorConfig.scaled(200, seed=8))
    transactions = backlog_transactions(sim, first_day=6, n=900)  # ~400 a day: 3 days
    assert len(transactions) == 900
    assert len({t.transaction_id for t in transactions}) == 900
    first = transactions[0].event_time.date()
    assert (first - DEFAULT_START).days == 6
    assert all(a.event_time <= b.event_time for a, b in pairwise(transactions))


def test_card_cache_numbers_and_the_one_million_card_targets() -> None:
    cache = CardCache(10, max_age_s=60.0)
    cache.lookup(["a", "b"], now=0.0)
    cache.store(["a"], [CardEntry.from_value(None, now=0.5)])
    cache.lookup(["a", "c"], now=1.0)
    probe: Any = SimpleNamespace(features=SimpleNamespace(cards=cache))
    numbers = ProbedScorer.card_cache(probe)
    assert numbers == {
        "hits": 1,
        "misses": 3,
        "hit_rate": 0.25,
        "cards_held": 1,
        "capacity": 10,
        "stale_cards": None,
    }
    run = {
        "tx_per_s": 9_000.0,
        "cpu_us_per_tx": 55.0,
        "redis_cpu_us_per_tx": 21.0,
        "max_rss_mb": 350.0,
        "card_cache": numbers,
        "cards": 1_000_000,
        "seed": {"redis_bytes_per_card": 2600.0, "events_per_card": 70.4},
        "redis_card_key_bytes": {"appended_by_backlog": 5100.0},
    }
    met = {k: v["met"] for k, v in card_targets({"1000000": run}).items()}
    assert met == {
        "1M_cards:backlog_tx_per_s>=10000": False,
        "1M_cards:cpu_us_per_tx<=60": True,
        "1M_cards:redis_cpu_us_per_tx<=20": False,
        "1M_cards:rss_mb<=400": True,
    }
    assert card_targets({"5000": run}) == {}
    assert "card cache hit rate 25.0 %" in cards_line(run)


def test_seeding_in_groups_of_cards_writes_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulator(SimulatorConfig.scaled(300, seed=8))

    def seeded(folder: Path) -> dict[bytes, bytes]:
        with own_redis(folder) as (url, _):
            client = redis.Redis.from_url(url)
            store = RedisFeatureStore(client, prefix="c")
            layout = FeastLayout(project="p", verify_with_feast=False)
            seed_state(client, store, layout, sim, days=4, log=lambda _: None)
            return {k: client.dump(k) or b"" for k in client.scan_iter(count=1_000)}

    whole = seeded(tmp_path / "whole")
    monkeypatch.setattr("loadtest.bench_cards.PASS_CARDS", 70)
    monkeypatch.setattr("loadtest.bench_cards.PLAN_CARDS", 30)
    grouped = seeded(tmp_path / "grouped")
    assert len(whole) > 600
    assert grouped == whole
