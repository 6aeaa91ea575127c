"""Rows for the live stream: simulated days, one at a time, handed out in any chunk size.

Memory stays bounded by one simulated day. Card-testing rows (scenario 4) are generated
with every day but handed out only while the caller says the new pattern is on, so the
switch takes effect at the exact row, whatever the rate.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt

from streams.events import Transaction
from streams.simulator.day import DayBatch
from streams.simulator.errors import InvalidSimulatorConfig
from streams.simulator.simulator import Simulator

I64 = npt.NDArray[np.int64]


class LiveSource:
    def __init__(self, simulator: Simulator, first_day: int = 0) -> None:
        self._sim = simulator
        self._next_day = first_day
        self._batch: DayBatch | None = None
        self._cursor = 0
        self.days_generated = 0
        world = simulator.world
        self._card_ids = world.card_ids
        self._customer_ids = world.customer_ids
        self._terminal_ids = world.terminal_ids
        self._mcc = world.terminal_mcc
        self._channel = world.terminal_channel
        self._country = world.terminal_country
        self._currency = simulator.config.currency

    def _load_next_day(self) -> DayBatch:
        self._batch = self._sim.day(self._next_day, card_testing=True)
        self._next_day += 1
        self._cursor = 0
        self.days_generated += 1
        return self._batch

    def take(self, n: int, *, card_testing: bool) -> list[tuple[DayBatch, I64]]:
        """The next ``n`` rows as (day batch, row indices) segments, in simulated order."""
        segments: list[tuple[DayBatch, I64]] = []
        empty_days = 0
        while n > 0:
            batch = self._batch
            if batch is None or self._cursor >= len(batch):
                batch = self._load_next_day()
                empty_days = empty_days + 1 if len(batch) == 0 else 0
                if empty_days > 1000:
                    raise InvalidSimulatorConfig(["the simulated world makes no transactions"])
                continue
            rest = np.arange(self._cursor, len(batch), dtype=np.int64)
            if not card_testing:
                rest = rest[batch.scenario[self._cursor :] != 4]
            picked = rest[:n]
            if len(picked) < n:
                self._cursor = len(batch)
            else:
                self._cursor = int(picked[-1]) + 1
            if len(picked):
                segments.append((batch, picked))
                n -= len(picked)
        return segments

    def transactions(self, batch: DayBatch, index: I64, event_time: datetime) -> list[Transaction]:
        """Transactions of the rows, re-timed: ``event_time`` (now) replaces simulated time."""
        out: list[Transaction] = []
        customers, terminals = batch.customer[index], batch.terminal[index]
        card_ids = self._card_ids.take(customers)
        customer_ids = self._customer_ids.take(customers)
        terminal_ids = self._terminal_ids.take(terminals)
        amounts = batch.amount[index].tolist()
        rows = zip(
            index.tolist(),
            terminals.tolist(),
            amounts,
            card_ids,
            customer_ids,
            terminal_ids,
            strict=True,
        )
        for i, t, amount, card_id, customer_id, terminal_id in rows:
            out.append(
                Transaction(
                    transaction_id=batch.transaction_id[i],
                    event_time=event_time,
                    card_id=card_id,
                    customer_id=customer_id,
                    terminal_id=terminal_id,
                    amount=amount,
                    currency=self._currency,
                    merchant_category=self._mcc[t],
                    channel=self._channel[t],
                    country=self._country[t],
                    device_id=batch.device[i],
                )
            )
        return out
