"""Simulator transactions for load: unique ids per run, event time = the moment of sending.

One feed per Locust process, shared by its users. The simulator's ``run_id`` salts the
transaction ids, so two runs (or two Locust worker processes) never send the same id and
the scorer's replay guard never skips a load-test transaction.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import msgspec

from loadtest.mixes import AttackBurst
from streams.events import Transaction
from streams.simulator import Simulator, SimulatorConfig
from streams.simulator.source import LiveSource

World = Literal["small", "default"]


@dataclass
class AttackSwitch:
    """Whether the feeds of this process send an attack burst (set by the attack shape)."""

    on: bool = False


ATTACK = AttackSwitch()


class TransactionFeed:
    """Endless simulated transactions (no card-testing rows), generated ``chunk`` at a time."""

    def __init__(
        self,
        *,
        world: World = "default",
        seed: int = 7,
        run_id: str | None = None,
        chunk: int = 512,
    ) -> None:
        config = (
            SimulatorConfig.small(seed=seed) if world == "small" else SimulatorConfig(seed=seed)
        )
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._source = LiveSource(Simulator(config, run_id=self.run_id))
        self._chunk = chunk
        self._ready: deque[Transaction] = deque()
        self._attack = AttackBurst(config.fraud_amount_threshold, seed)

    def next(self) -> Transaction:
        """The next transaction, stamped with the current wall-clock time; while an attack
        is on (:data:`ATTACK`), some of them stolen-card spending (:class:`AttackBurst`)."""
        if not self._ready:
            now = datetime.now(UTC)
            for batch, index in self._source.take(self._chunk, card_testing=False):
                self._ready.extend(self._source.transactions(batch, index, now))
        tx = msgspec.structs.replace(self._ready.popleft(), event_time=datetime.now(UTC))
        return self._attack.apply(tx) if ATTACK.on else tx
