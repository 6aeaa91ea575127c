"""A seeded history holds exactly the bytes the batch writer leaves for the same rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from features.kernels import DAY_US, terminal_hash, time_us, transaction_hash
from features.realtime.layout import card_key, terminal_key, terminal_values
from features.realtime.memory import InMemoryFeatureStore
from features.realtime.seed import CardRows, card_values
from streams.events import Transaction

pytestmark = pytest.mark.unit


def _history(cards: int, terminals: int, days: int) -> list[Transaction]:
    rng = random.Random(4)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = [
        Transaction(
            transaction_id=f"h{i}",
            event_time=start + timedelta(seconds=rng.uniform(0, days * 86_400)),
            card_id=f"K{rng.randrange(cards):06d}",
            customer_id="U0",
            terminal_id=f"T{rng.randrange(terminals):06d}",
            amount=round(rng.uniform(1, 300), 2),
            merchant_category="5411",
        )
        for i in range(cards * days * 2)
    ]
    return sorted(out, key=lambda t: t.event_time)


def test_seeded_cards_and_terminals_equal_what_the_writer_leaves() -> None:
    history = _history(cards=40, terminals=25, days=35)
    replayed = InMemoryFeatureStore(prefix="s", pipeline_chunk=0)
    for start in range(0, len(history), 300):
        replayed.update_batch(history[start : start + 300])

    card_ids = sorted({t.card_id for t in history})
    terminal_ids = sorted({t.terminal_id for t in history})
    by_card = sorted(history, key=lambda t: (t.card_id, t.event_time))
    rows = CardRows(
        card=np.array([card_ids.index(t.card_id) for t in by_card], dtype=np.int64),
        t_us=np.array([time_us(t.event_time) for t in by_card], dtype=np.int64),
        amount=np.array([t.amount for t in by_card]),
        term_hash=np.array([terminal_hash(t.terminal_id) for t in by_card], dtype=np.int64),
        txh=np.frombuffer(b"".join(transaction_hash(t.transaction_id) for t in by_card), "<u8"),
    )
    seeded = InMemoryFeatureStore(prefix="s")
    values = card_values(rows, card_ids, seeded)
    for card, value in zip(card_ids, values, strict=True):
        assert value == replayed.state[card_key("s", card)]

    t_us = np.array([time_us(t.event_time) for t in history], dtype=np.int64)
    term = np.array([terminal_ids.index(t.terminal_id) for t in history])
    first_day = int(t_us.min() // DAY_US)
    counts = np.zeros((len(terminal_ids), 36), dtype=np.int32)
    np.add.at(counts, (term, t_us // DAY_US - first_day), 1)
    newest = np.full(len(terminal_ids), -1e300)
    np.maximum.at(newest, term, t_us.astype(np.float64))
    for terminal, value in zip(
        terminal_ids, terminal_values(first_day, counts, newest), strict=True
    ):
        assert value.tobytes() == replayed.state[terminal_key("s", terminal)]


def test_rows_out_of_time_order_are_refused() -> None:
    rows = CardRows(
        card=np.array([0, 0], dtype=np.int64),
        t_us=np.array([10 * DAY_US, DAY_US], dtype=np.int64),
        amount=np.array([1.0, 2.0]),
        term_hash=np.array([1, 2], dtype=np.int64),
        txh=np.array([1, 2], dtype=np.uint64),
    )
    with pytest.raises(ValueError, match="time order"):
        card_values(rows, ["K1"], InMemoryFeatureStore(prefix="s"))


def test_cards_without_rows_get_no_value_wherever_they_are() -> None:
    rows = CardRows(
        card=np.array([1, 1, 3], dtype=np.int64),
        t_us=np.array([DAY_US, 2 * DAY_US, DAY_US], dtype=np.int64),
        amount=np.array([1.0, 2.0, 3.0]),
        term_hash=np.array([1, 2, 3], dtype=np.int64),
        txh=np.array([1, 2, 3], dtype=np.uint64),
    )
    store = InMemoryFeatureStore(prefix="s")
    values = card_values(rows, ["K0", "K1", "K2", "K3", "K4"], store)
    assert [len(v) for v in values] == [0, 2 * 32 + 12, 0, 32 + 12, 0]
