"""The features benchmark's warm-up written straight into Redis, for millions of cards.

Replaying 35 days of 2,000,000 cards through the batch script would take hours; seeding
writes the same kind of state in minutes (:mod:`features.realtime.seed`: the writer's own
planner and layout). The synthetic history matches :func:`features.bench.synthetic_stream`
(each card ``per_card_per_day`` transactions a day at one of its 8 home terminals,
log-normal amounts), drawn with numpy one group of cards at a time so memory stays
bounded at any card count.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import redis

from features.kernels import DAY_US, US, terminal_hash, time_us
from features.realtime.seed import CardRows, card_values, write_cards, write_terminals
from features.realtime.store import BatchFeatureStore

HOME_TERMINALS = 8
GROUP_CARDS = 20_000


def home_terminals(cards: int, terminals: int, seed: int) -> npt.NDArray[np.int32]:
    """Each card's 8 home terminals (rows of card indices)."""
    rng = np.random.default_rng([seed, 1])
    return rng.integers(0, terminals, size=(cards, HOME_TERMINALS), dtype=np.int32)


def seed_history(
    client: redis.Redis,
    store: BatchFeatureStore,
    home: npt.NDArray[np.int32],
    terminals: int,
    per_card_per_day: float,
    start: datetime,
    days: int,
    seed: int,
) -> int:
    """``days`` days from ``start`` of every card's history as real-time state; the
    number of transactions written."""
    cards = len(home)
    start_us = time_us(start)
    first_day = start_us // DAY_US
    span = days * DAY_US
    term_hash = np.array([terminal_hash(f"T{t:06d}") for t in range(terminals)], dtype=np.int64)
    day_counts = np.zeros((terminals, days + 1), dtype=np.int32)
    newest = np.full(terminals, -1e300)
    written = 0
    for low in range(0, cards, GROUP_CARDS):
        high = min(low + GROUP_CARDS, cards)
        rng = np.random.default_rng([seed, 2, low])
        counts = rng.poisson(per_card_per_day * days, high - low)
        card = np.repeat(np.arange(high - low, dtype=np.int64), counts)
        t = start_us + rng.integers(0, span, len(card)) // US * US
        order = np.lexsort((t, card))
        card, t = card[order], t[order]
        terminal = home[low + card, rng.integers(0, HOME_TERMINALS, len(card))].astype(np.int64)
        amount = np.maximum(np.round(rng.lognormal(3.5, 0.8, len(card)), 2), 1.0)
        txh = rng.integers(0, 2**63, len(card), dtype=np.int64).view(np.uint64)
        rows = CardRows(card, t, amount, term_hash[terminal], txh)
        ids = [f"K{c:06d}" for c in range(low, high)]
        write_cards(client, store, ids, card_values(rows, ids, store))
        np.add.at(day_counts, (terminal, t // DAY_US - first_day), 1)
        np.maximum.at(newest, terminal, t.astype(np.float64))
        written += len(card)
    terminal_ids = [f"T{t:06d}" for t in range(terminals)]
    write_terminals(client, store, terminal_ids, int(first_day), day_counts, newest)
    return written
