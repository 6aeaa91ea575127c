"""Integration fixtures: a small simulated world and a champion model trained on it.

The champion is trained once per session through the real path (simulator history ->
offline features -> LightGBM -> ONNX with parity -> file registry -> promote), so the
scorer tests exercise exactly what production loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.offline import build_training_table
from models.pipeline import TrainConfig, train_from_table
from models.registry import ModelRegistry
from streams.events import Transaction
from streams.simulator import SimulatorConfig, simulate_history

HISTORY_DAYS = 42


@dataclass(frozen=True)
class SmallWorld:
    transactions: pd.DataFrame
    labels: pd.DataFrame

    def as_events(self, n: int) -> list[Transaction]:
        """The last ``n`` transactions of the history, in event order."""
        assert n <= len(self.transactions), f"the small world has {len(self.transactions)}"
        return to_events(self.transactions.tail(n))


def to_events(frame: pd.DataFrame) -> list[Transaction]:
    fields = Transaction.__struct_fields__
    out = []
    for row in frame.itertuples(index=False):
        values = {f: getattr(row, f) for f in fields if hasattr(row, f)}
        values["event_time"] = values["event_time"].to_pydatetime()
        for key, value in list(values.items()):
            if value is None or (isinstance(value, float) and value != value):
                values.pop(key)
        values["amount"] = float(values["amount"])
        values["schema_version"] = int(values.get("schema_version", 1))
        out.append(Transaction(**values))
    return out


@pytest.fixture(scope="session")
def small_world() -> SmallWorld:
    transactions, labels = simulate_history(SimulatorConfig.small(seed=11), days=HISTORY_DAYS)
    return SmallWorld(transactions, labels)


@pytest.fixture(scope="session")
def champion_state(
    small_world: SmallWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A state folder whose ``registry/`` has a champion trained on the small world."""
    state = tmp_path_factory.mktemp("state")
    root = state / "registry"
    table = build_training_table(small_world.transactions, small_world.labels)
    outcome = train_from_table(
        table,
        FEATURE_NAMES,
        FEATURE_SET_ID,
        config=TrainConfig(train_days=21, delay_days=7, test_days=7, seed=3),
        source="small simulated world",
        fingerprint="test-small-world",
    )
    registry = ModelRegistry(root)
    version = registry.register(outcome.bundle)
    registry.promote(version.version, reason="test champion")
    yield state
