"""Transaction simulator (Fraud Detection Handbook style), deterministic by seed.

History (parquet) for training and features::

    config = SimulatorConfig.small(seed=7)
    transactions, labels = simulate_history(config, days=30)
    write_history(Path("state/sim"), config, days=30)
    transactions, labels = read_history(Path("state/sim"))

Live stream into Kafka with ground truth in Redis: :func:`stream_transactions`.
"""

from __future__ import annotations

from streams.simulator.config import SCENARIO_NAMES, SimulatorConfig
from streams.simulator.day import DayBatch
from streams.simulator.errors import HistoryExists, HistoryNotFound, InvalidSimulatorConfig
from streams.simulator.history import (
    read_history,
    read_manifest,
    simulate_history,
    verify_history,
    write_history,
)
from streams.simulator.simulator import Simulator
from streams.simulator.stats import FraudStats, check_bounds
from streams.simulator.stream import StreamReport, stream_transactions
from streams.simulator.tables import LABEL_SCHEMA, TRANSACTION_SCHEMA
from streams.simulator.truth import GroundTruthStore

__all__ = [
    "LABEL_SCHEMA",
    "SCENARIO_NAMES",
    "TRANSACTION_SCHEMA",
    "DayBatch",
    "FraudStats",
    "GroundTruthStore",
    "HistoryExists",
    "HistoryNotFound",
    "InvalidSimulatorConfig",
    "Simulator",
    "SimulatorConfig",
    "StreamReport",
    "check_bounds",
    "read_history",
    "read_manifest",
    "simulate_history",
    "stream_transactions",
    "verify_history",
    "write_history",
]
