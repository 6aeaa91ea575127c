"""The generator: a :class:`World` for a seed, and days of transactions drawn on demand."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from streams.simulator.config import SimulatorConfig
from streams.simulator.day import DayBatch, generate_day
from streams.simulator.world import World, build_world


def id_salt(seed: int, run_id: str | None = None) -> int:
    """Salt of the transaction ids: fixed by the seed (history), or seed + run (stream)."""
    text = f"{seed}" if run_id is None else f"{seed}:{run_id}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Simulator:
    """Deterministic transaction generator (Fraud Detection Handbook style).

    ``day(d)`` is a pure function of (config, d, card_testing, run_id): days can be drawn
    alone and in any order. The world (customers, terminals, neighbourhoods) is built
    once in the constructor.
    """

    def __init__(self, config: SimulatorConfig, *, run_id: str | None = None) -> None:
        self.config = config
        self.run_id = run_id
        self.salt = id_salt(config.seed, run_id)
        self.world: World = build_world(config)

    def day(self, day: int, *, card_testing: bool | None = None) -> DayBatch:
        """Transactions of simulated ``day``; card testing as configured unless forced."""
        on = self.config.card_testing_on(day) if card_testing is None else card_testing
        return generate_day(self.world, self.config, day, card_testing=on, salt=self.salt)

    def days(
        self, first: int = 0, count: int | None = None, *, card_testing: bool | None = None
    ) -> Iterator[DayBatch]:
        """Consecutive days from ``first``; endless when ``count`` is None."""
        day = first
        while count is None or day < first + count:
            yield self.day(day, card_testing=card_testing)
            day += 1
