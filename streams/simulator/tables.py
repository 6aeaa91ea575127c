"""Arrow tables of simulated days: transactions (exactly the Transaction fields) and labels.

The transaction columns are those of :class:`streams.events.Transaction`, in its field
order; the ground truth lives in a separate labels table, never beside the features.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from streams.events import SCHEMA_VERSION
from streams.simulator.config import SimulatorConfig
from streams.simulator.day import DayBatch
from streams.simulator.world import World

TS = pa.timestamp("us", tz="UTC")
TRANSACTION_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("event_time", TS, nullable=False),
        pa.field("card_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("terminal_id", pa.string(), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("merchant_category", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("country", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("schema_version", pa.int32(), nullable=False),
    ]
)
LABEL_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("event_time", TS, nullable=False),
        pa.field("is_fraud", pa.int8(), nullable=False),
        pa.field("scenario", pa.int8(), nullable=False),
        pa.field("labelled_at", TS, nullable=False),
    ]
)


def day_start_us(start: date, day: int) -> int:
    """Epoch microseconds of 00:00 UTC of simulated ``day`` (day 0 = ``start``)."""
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return int(midnight.timestamp()) * 1_000_000 + day * 86_400 * 1_000_000


class TableBuilder:
    """Turns :class:`DayBatch` rows into Arrow tables (ids formatted per batch)."""

    def __init__(self, world: World, config: SimulatorConfig) -> None:
        self._customer_ids = world.customer_ids
        self._card_ids = world.card_ids
        self._terminal_ids = world.terminal_ids
        self._mcc = pa.array(world.terminal_mcc, pa.string())
        self._channel = pa.array(world.terminal_channel, pa.string())
        self._country = pa.array(world.terminal_country, pa.string())
        self._currency = config.currency

    def transactions(self, batch: DayBatch, start: date) -> pa.Table:
        n = len(batch)
        terminal = pa.array(batch.terminal)
        columns = [
            pa.array(batch.transaction_id, pa.string()),
            pa.array(batch.time_us + day_start_us(start, batch.day), TS),
            pa.array(self._card_ids.take(batch.customer), pa.string()),
            pa.array(self._customer_ids.take(batch.customer), pa.string()),
            pa.array(self._terminal_ids.take(batch.terminal), pa.string()),
            pa.array(batch.amount, pa.float64()),
            pa.array(np.full(n, self._currency, dtype=object), pa.string()),
            self._mcc.take(terminal),
            self._channel.take(terminal),
            self._country.take(terminal),
            pa.array(batch.device, pa.string()),
            pa.array(np.full(n, SCHEMA_VERSION, dtype=np.int32), pa.int32()),
        ]
        return pa.Table.from_arrays(columns, schema=TRANSACTION_SCHEMA)

    def labels(self, batch: DayBatch, start: date) -> pa.Table:
        event_us = batch.time_us + day_start_us(start, batch.day)
        columns = [
            pa.array(batch.transaction_id, pa.string()),
            pa.array(event_us, TS),
            pa.array(batch.is_fraud, pa.int8()),
            pa.array(batch.scenario, pa.int8()),
            pa.array(event_us + batch.label_delay_us, TS),
        ]
        return pa.Table.from_arrays(columns, schema=LABEL_SCHEMA)
