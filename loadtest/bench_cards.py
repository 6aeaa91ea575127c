"""The scorer's backlog at a card count: what millions of active cards cost.

With the handbook's 5,000 cards every card stays in the scorer's process cache; with
millions most transactions miss it and read their card from Redis. Per card count, on a
Redis of its own (a ``redis-server`` on a free port under the run's temporary folder, no
persistence, stopped and removed afterwards) and the run's broker and champion:

1. the world: :meth:`SimulatorConfig.scaled` (two terminals per card);
2. the history: the simulator's first :data:`HISTORY_DAYS` days written straight into the
   real-time state by :mod:`features.realtime.seed` (the writer's own planner and layout,
   as if each card's history had arrived in one batch), plus a terminal-risk profile row
   per terminal in Feast's layout. ``INFO memory`` before and after each part gives the
   bytes per card, per terminal and per profile row;
3. the backlog: the simulator's next transactions, produced to a fresh topic, then one
   real scorer process over them (:mod:`loadtest.scorer_probe`): tx/s, scorer CPU per
   transaction, card-cache hits and misses, RSS; Redis CPU per transaction from ``INFO
   cpu`` sampled over the same window.

Numbers are returned; nothing is asserted.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import redis

from features.kernels import DAY_US, terminal_hash
from features.profiles.layout import FeastLayout
from features.realtime.layout import card_keys
from features.realtime.redis_store import RedisFeatureStore
from features.realtime.seed import CardRows, card_values, write_cards, write_terminals
from loadtest.bench_setup import (
    BENCH_SEED,
    BenchEnv,
    BenchError,
    CpuSampler,
    load_average,
    process_tree_cpu,
    produce_all,
    redis_cpu,
    spawn_module,
    stop_process,
    to_transactions,
)
from loadtest.procstats import collector_text
from services.stack.process import ManagedProcess, free_port, spawn, stop
from streams.events import Transaction
from streams.simulator import Simulator, SimulatorConfig
from streams.simulator.day import base_numbers, base_rows
from streams.simulator.history import DEFAULT_START
from streams.simulator.tables import TableBuilder, day_start_us

Log = Callable[[str], None]
I64 = npt.NDArray[np.int64]
HISTORY_DAYS = 35
"""Days of history per card before the backlog: past the 30-day card window, as the
features benchmark warms up (about 70 events per card at the world's 2 per day)."""
PASS_CARDS = 100_000
"""Cards whose history is held at once (~0.3 GB of rows); the days are drawn again for
each group of cards, so memory stays bounded at any card count."""
PLAN_CARDS = 20_000
"""Cards planned (and written) per call of the writer's planner."""


@dataclass(frozen=True)
class SeedReport:
    cards: int
    terminals: int
    events: int
    seconds: float
    card_bytes: int
    terminal_bytes: int
    profile_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "cards_with_state": self.cards,
            "terminals_with_state": self.terminals,
            "events": self.events,
            "events_per_card": round(self.events / max(self.cards, 1), 1),
            "seed_s": round(self.seconds, 1),
            "redis_bytes_per_card": round(self.card_bytes / max(self.cards, 1), 1),
            "redis_bytes_per_terminal": round(self.terminal_bytes / max(self.terminals, 1), 1),
            "redis_profile_bytes_per_terminal": round(
                self.profile_bytes / max(self.terminals, 1), 1
            ),
        }


@contextmanager
def own_redis(workdir: Path) -> Iterator[tuple[str, ManagedProcess]]:
    """A ``redis-server`` of the run on a free port, without persistence (gigabytes of
    card state are never written to disk), removed on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    port = free_port()
    data = workdir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    url = f"redis://127.0.0.1:{port}/0"
    process = spawn("redis", command, url, workdir / f"redis-{port}.log")
    try:
        client = redis.Redis.from_url(url)
        for _ in range(150):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield url, process
    finally:
        stop(process)
        shutil.rmtree(data, ignore_errors=True)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def seed_state(
    client: redis.Redis,
    store: RedisFeatureStore,
    layout: FeastLayout,
    sim: Simulator,
    days: int = HISTORY_DAYS,
    log: Log = print,
) -> SeedReport:
    """The simulator's days ``0 .. days-1`` as real-time state, and a profile row per
    terminal; Redis memory measured around each part."""
    world = sim.world
    started = time.perf_counter()
    term_hash = np.fromiter(
        map(terminal_hash, world.terminal_ids), dtype=np.int64, count=world.n_terminals
    )
    day_counts = np.zeros((world.n_terminals, days), dtype=np.int32)
    newest = np.full(world.n_terminals, -1e300)
    base = used_memory(client)
    cards = events = 0
    for first in range(0, world.n_customers, PASS_CARDS):
        last = min(first + PASS_CARDS, world.n_customers)
        rows = _history_rows(sim, days, first, last, day_counts, newest)
        events += len(rows.card)
        cuts = [*np.arange(first, last, PLAN_CARDS).tolist(), last]
        bounds = np.searchsorted(rows.card, cuts).tolist()
        for low, high, a, b in zip(cuts[:-1], cuts[1:], bounds[:-1], bounds[1:], strict=True):
            ids = world.card_ids[low:high]
            part = CardRows(
                card=rows.card[a:b] - low,
                t_us=rows.t_us[a:b],
                amount=rows.amount[a:b],
                term_hash=term_hash[rows.terminal[a:b]],
                txh=rows.txh[a:b],
            )
            cards += write_cards(client, store, ids, card_values(part, ids, store))
        took = time.perf_counter() - started
        log(f"  history of cards {first:,}..{last - 1:,} seeded ({took:.0f}s)")
    after_cards = used_memory(client)
    first_day = int(day_start_us(DEFAULT_START, 0) // DAY_US)
    terminals = write_terminals(client, store, world.terminal_ids, first_day, day_counts, newest)
    after_terminals = used_memory(client)
    _seed_profiles(client, layout, world.terminal_ids, day_start_us(DEFAULT_START, days))
    after_profiles = used_memory(client)
    return SeedReport(
        cards=cards,
        terminals=terminals,
        events=events,
        seconds=time.perf_counter() - started,
        card_bytes=after_cards - base,
        terminal_bytes=after_terminals - after_cards,
        profile_bytes=after_profiles - after_terminals,
    )


@dataclass(frozen=True)
class _Rows:
    card: I64
    t_us: I64
    amount: npt.NDArray[np.float64]
    terminal: I64
    txh: npt.NDArray[np.uint64]


def _history_rows(
    sim: Simulator,
    days: int,
    first: int,
    last: int,
    day_counts: npt.NDArray[np.int32],
    newest: npt.NDArray[np.float64],
) -> _Rows:
    """The rows of cards ``first .. last-1`` in days ``0 .. days-1``, sorted by (card,
    time); their terminals' day counts and newest times are added to ``day_counts`` and
    ``newest``."""
    parts: list[tuple[I64, ...]] = []
    for day in range(days):
        time_us, customer, terminal, amount, *_ = base_rows(sim.world, sim.config, day)
        numbers = base_numbers(day, len(time_us), sim.salt)
        keep = np.flatnonzero((customer >= first) & (customer < last))
        t = time_us[keep] + day_start_us(DEFAULT_START, day)
        term = terminal[keep]
        day_counts[:, day] += np.bincount(term, minlength=len(newest)).astype(np.int32)
        np.maximum.at(newest, term, t.astype(np.float64))
        parts.append(
            (customer[keep], t, amount[keep].view(np.int64), term, numbers[keep].view(np.int64))
        )
    card, t_us, amount, terminal, txh = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((t_us, card))
    return _Rows(
        card=card[order],
        t_us=t_us[order],
        amount=amount[order].view(np.float64),
        terminal=terminal[order],
        txh=txh[order].view(np.uint64),
    )


def _seed_profiles(
    client: redis.Redis, layout: FeastLayout, terminal_ids: Any, as_of_us: int
) -> None:
    """One terminal-risk row per terminal, all risks zero as of the history's end: the
    scorer reads a row per transaction as it would in production."""
    row = layout.encode_row(np.zeros(len(layout.features), dtype=np.float32), as_of_us // 1_000_000)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(terminal_ids), 2_000):
        for key in layout.entity_keys(terminal_ids[start : start + 2_000]):
            pipe.hset(key, mapping=row)
        pipe.execute()


def backlog_transactions(sim: Simulator, first_day: int, n: int) -> list[Transaction]:
    """The simulator's first ``n`` transactions from ``first_day`` on (simulated times)."""
    builder = TableBuilder(sim.world, sim.config)
    out: list[Transaction] = []
    day = first_day
    while len(out) < n:
        batch = sim.day(day)
        batch = batch.take(np.arange(min(len(batch), n - len(out)), dtype=np.int64))
        out += to_transactions(builder.transactions(batch, DEFAULT_START).to_pandas())
        day += 1
    return out


def card_count_phase(
    env: BenchEnv, cards: int, backlog: int, sampler: CpuSampler, log: Log
) -> dict[str, Any]:
    """One card count: seed, produce the backlog, score it; the numbers (module doc)."""
    started = time.perf_counter()
    sim = Simulator(SimulatorConfig.scaled(cards, seed=BENCH_SEED))
    world_s = time.perf_counter() - started
    log(
        f"cards {cards:,}: world of {sim.world.n_terminals:,} terminals in {world_s:.1f}s; "
        f"seeding {HISTORY_DAYS} days of history on a Redis of its own"
    )
    prefix, project = f"cards{env.run_id}", f"fraud_cards{env.run_id}"
    with own_redis(env.workdir) as (url, _), env.phase_topics(f"cards{cards}") as topics:
        client = redis.Redis.from_url(url)
        store = RedisFeatureStore(client, prefix=prefix)
        layout = FeastLayout(project=project, verify_with_feast=False)
        seeded = seed_state(client, store, layout, sim, log=log)
        log(
            f"  {seeded.cards:,} cards ({seeded.events / max(seeded.cards, 1):.1f} events "
            f"each) and {seeded.terminals:,} terminals seeded in {seeded.seconds:.0f}s"
        )
        transactions = backlog_transactions(sim, HISTORY_DAYS, backlog)
        produce_s = produce_all(env.bootstrap, topics.transactions, transactions)
        distinct = len({t.card_id for t in transactions})
        del transactions
        probe = f"redis-cards-{cards}"
        sampler.add(probe, redis_cpu(client))
        memory_before = used_memory(client)
        client.config_resetstat()
        variables = {
            **env.service_env(topics, f"cards{cards}"),
            "FRAUD_REDIS_URL": url,
            "FRAUD_REDIS_PREFIX": prefix,
            "FRAUD_FEAST_PROJECT": project,
        }
        stats = run_probe(env, variables, f"scorer-cards-{cards}", sampler)
        sampler.remove(probe)
        first, last = stats.get("first_wall"), stats.get("last_wall")
        redis_pct = sampler.share(probe, first, last) if first and last else None
        decided = stats.get("decided") or 0
        wall = (last - first) if first and last else 0.0
        stats.update(
            {
                "cards": cards,
                "terminals": sim.world.n_terminals,
                "backlog": backlog,
                "distinct_cards_in_backlog": distinct,
                "produce_s": round(produce_s, 2),
                "complete": decided == backlog,
                "world_s": round(world_s, 1),
                "seed": seeded.as_dict(),
                "redis_cpu_pct": redis_pct,
                "redis_cpu_us_per_tx": (
                    redis_pct / 100 * wall * 1e6 / decided if redis_pct and decided else None
                ),
                "redis_used_memory_mb": round(used_memory(client) / 2**20, 1),
                "redis_memory_growth_per_tx": round(
                    (used_memory(client) - memory_before) / max(decided, 1), 1
                ),
                "redis_command_us_per_tx": command_time_per_tx(client, decided),
                "redis_card_key_bytes": _card_key_sizes(client, store, sim, HISTORY_DAYS),
                "load_average": load_average(),
            }
        )
    log(cards_line(stats))
    return stats


def command_time_per_tx(client: redis.Redis, decided: int) -> dict[str, dict[str, float]]:
    """Redis's own time per command since the last ``CONFIG RESETSTAT``, per decided
    transaction: where its CPU goes (a script's time includes the commands it calls, which
    are also listed on their own)."""
    out: dict[str, dict[str, float]] = {}
    for name, stat in client.info("commandstats").items():
        if not isinstance(stat, dict) or not stat.get("calls"):
            continue
        out[name.removeprefix("cmdstat_")] = {
            "us_per_tx": round(float(stat["usec"]) / max(decided, 1), 2),
            "calls_per_tx": round(int(stat["calls"]) / max(decided, 1), 3),
            "us_per_call": round(float(stat["usec_per_call"]), 2),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["us_per_tx"]))


def run_probe(
    env: BenchEnv, variables: dict[str, str], name: str, sampler: CpuSampler
) -> dict[str, Any]:
    """One scorer process (:mod:`loadtest.scorer_probe`) over the topic until idle."""
    out, log_path = env.workdir / f"{name}.json", env.workdir / f"{name}.log"
    proc = spawn_module(
        "loadtest.scorer_probe", ["--max-idle-s", "6", "--out", str(out)], variables, log_path
    )
    sampler.add(name, process_tree_cpu(proc.pid))
    try:
        code = proc.wait(3_600)
    finally:
        stop_process(proc)
        sampler.remove(name)
    if code != 0 or not out.exists():
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        raise BenchError(f"{name} exited with {code}: {tail}")
    stats: dict[str, Any] = json.loads(out.read_text())
    return stats


def _card_key_sizes(
    client: redis.Redis, store: RedisFeatureStore, sim: Simulator, history_days: int
) -> dict[str, float | None]:
    """``MEMORY USAGE`` of cards the backlog appended to and of cards it did not touch:
    an appended string keeps Redis's growth reserve (about its own size again)."""
    day = sim.day(history_days)
    touched = np.unique(day.customer[: min(len(day), 2_000)])[:300]
    spared = np.setdiff1d(np.arange(sim.world.n_customers), day.customer)[:300]

    def mean(indices: I64) -> float | None:
        keys = card_keys(store.prefix, sim.world.card_ids.take(indices))
        sizes = [client.memory_usage(k, samples=0) for k in keys]
        found = [int(s) for s in sizes if s]
        return round(float(np.mean(found)), 1) if found else None

    return {"appended_by_backlog": mean(touched), "as_seeded": mean(spared)}


def cards_line(s: dict[str, Any]) -> str:
    cache = s.get("card_cache", {})
    seed = s.get("seed", {})
    redis_us = s.get("redis_cpu_us_per_tx")
    sizes = s.get("redis_card_key_bytes", {})
    hit = cache.get("hit_rate")
    split = s.get("redis_command_us_per_tx", {})
    top = ", ".join(f"{name} {v['us_per_tx']:.1f}" for name, v in list(split.items())[:5])
    return (
        f"  cards {s['cards']:,}: {s['tx_per_s']:,.0f} tx/s, scorer cpu "
        f"{s['cpu_us_per_tx']:.1f} us/tx, redis cpu "
        f"{'-' if redis_us is None else f'{redis_us:.1f}'} us/tx, card cache hit rate "
        f"{'-' if hit is None else f'{100 * hit:.1f} %'}, rss {s['max_rss_mb']:.0f} MB | "
        f"redis {seed.get('redis_bytes_per_card')} B/card as seeded "
        f"({seed.get('events_per_card')} events; {sizes.get('appended_by_backlog')} B once "
        f"appended), {seed.get('redis_bytes_per_terminal')} B/terminal, "
        f"{seed.get('redis_profile_bytes_per_terminal')} B/profile row | {collector_text(s)}"
        + (f" | redis us/tx by command: {top}" if top else "")
    )
