"""Integration fixtures: a small simulated world and a champion model trained on it.

The champion is trained once per session through the real path (simulator history ->
offline features -> LightGBM -> ONNX with parity -> file registry -> promote), so the
scorer tests exercise exactly what production loads.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pandas as pd
import pytest

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.offline import build_training_table
from models.pipeline import TrainConfig, train_from_table
from models.registry import ModelBundle, ModelRegistry
from streams.events import Transaction
from streams.simulator import SimulatorConfig, simulate_history
from tests.integration.api_fixtures import client, context, keys  # noqa: F401 (fixtures)

HISTORY_DAYS = 42


@dataclass(frozen=True)
class SmallWorld:
    transactions: pd.DataFrame
    labels: pd.DataFrame

    def as_events(self, n: int) -> list[Transaction]:
        """The last ``n`` transactions of the history, in event order."""
        assert n <= len(self.transactions), f"the small world has {len(self.transactions)}"
        return to_events(self.transactions.tail(n))

    def as_live_events(self, n: int, rate: float) -> list[Transaction]:
        """The last ``n`` transactions re-timed to now, ``rate`` per second, like live traffic.

        A backlog of history replayed in seconds would put days of event time between the
        partitions' heads; re-timed events keep them as close as live traffic does.
        """
        start = datetime.now(UTC)
        return [
            msgspec.structs.replace(tx, event_time=start + timedelta(seconds=i / rate))
            for i, tx in enumerate(self.as_events(n))
        ]


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
def trained_bundle(small_world: SmallWorld) -> ModelBundle:
    """A model trained on the small world through the production training path."""
    table = build_training_table(small_world.transactions, small_world.labels)
    outcome = train_from_table(
        table,
        FEATURE_NAMES,
        FEATURE_SET_ID,
        config=TrainConfig(train_days=21, delay_days=7, test_days=7, seed=3),
        source="small simulated world",
        fingerprint="test-small-world",
    )
    return outcome.bundle


@pytest.fixture(scope="session")
def champion_state(
    trained_bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A state folder whose ``registry/`` has a champion trained on the small world.

    Shared by the session: a test that changes the champion works on a copy
    (:func:`private_state`).
    """
    state = tmp_path_factory.mktemp("state")
    registry = ModelRegistry(state / "registry")
    version = registry.register(trained_bundle)
    registry.promote(version.version, reason="test champion")
    yield state


def private_state(champion_state: Path, target: Path) -> Path:
    """A copy of the champion state that a test may promote and roll back freely."""
    shutil.copytree(champion_state, target)
    return target
