"""Simulated history: determinism, file layout, columns, bounds, scenario 4 switch."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from streams.events import Transaction
from streams.serde import Rejection, encode, transaction_decoder
from streams.simulator import (
    FraudStats,
    HistoryExists,
    HistoryNotFound,
    SimulatorConfig,
    check_bounds,
    read_history,
    simulate_history,
    verify_history,
    write_history,
)

pytestmark = pytest.mark.unit
START = date(2026, 1, 1)
DAYS = 30


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_history(SimulatorConfig.small(seed=42), DAYS, START)


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    config = SimulatorConfig.small(seed=7, new_pattern_from_day=3)
    first = write_history(tmp_path / "a", config, 5, START)
    second = write_history(tmp_path / "b", config, 5, START)
    hashes_a, hashes_b = _file_hashes(tmp_path / "a"), _file_hashes(tmp_path / "b")
    assert hashes_a == hashes_b
    assert len(hashes_a) == 5 + 2  # 5 partitions, labels, manifest
    assert first["fingerprint"] == second["fingerprint"]
    assert verify_history(tmp_path / "a") == []


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = write_history(tmp_path / "a", SimulatorConfig.small(seed=1), 3, START)
    b = write_history(tmp_path / "b", SimulatorConfig.small(seed=2), 3, START)
    assert a["fingerprint"] != b["fingerprint"]
    assert set(a["files"].values()).isdisjoint(b["files"].values())


def test_layout_is_hive_partitioned_by_event_day(tmp_path: Path) -> None:
    manifest = write_history(tmp_path, SimulatorConfig.small(seed=3), 3, date(2026, 2, 27))
    parts = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert parts == [
        "labels.parquet",
        "transactions/date=2026-02-27/part-0.parquet",
        "transactions/date=2026-02-28/part-0.parquet",
        "transactions/date=2026-03-01/part-0.parquet",
    ]
    day = pq.read_table(tmp_path / parts[2]).to_pandas()
    assert (day["event_time"].dt.date == date(2026, 2, 28)).all()
    assert manifest["rows"]["transactions"] == manifest["stats"]["rows"]
    transactions, labels = read_history(tmp_path)
    assert len(transactions) == len(labels) == manifest["rows"]["transactions"]


def test_transaction_columns_are_exactly_the_event_fields_without_labels(
    small_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    transactions, labels = small_history
    assert list(transactions.columns) == list(Transaction.__struct_fields__)
    assert {"is_fraud", "scenario", "labelled_at"}.isdisjoint(transactions.columns)
    assert list(labels.columns) == [
        "transaction_id",
        "event_time",
        "is_fraud",
        "scenario",
        "labelled_at",
    ]
    assert str(transactions["event_time"].dtype) == "datetime64[us, UTC]"
    assert transactions["amount"].dtype == np.float64
    assert labels["is_fraud"].dtype == np.int8 and labels["scenario"].dtype == np.int8
    assert (transactions["amount"] == transactions["amount"].round(2)).all()


def test_every_row_decodes_as_a_transaction(
    small_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    transactions, _ = small_history
    rejected = []
    for row in transactions.to_dict("records"):
        row["event_time"] = row["event_time"].to_pydatetime()
        decoded = transaction_decoder.decode(encode(Transaction(**row)))
        if isinstance(decoded, Rejection):
            rejected.append((row["transaction_id"], decoded.message))
    assert rejected == []
    assert len(transactions) > 25_000


def test_rows_sorted_ids_unique_and_labels_aligned(
    small_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    transactions, labels = small_history
    keys = list(zip(transactions["event_time"], transactions["transaction_id"], strict=True))
    assert keys == sorted(keys)
    assert transactions["transaction_id"].is_unique
    assert labels["transaction_id"].tolist() == transactions["transaction_id"].tolist()
    assert labels["event_time"].tolist() == transactions["event_time"].tolist()
    delay = labels["labelled_at"] - labels["event_time"]
    assert delay.min() >= pd.Timedelta(days=1) and delay.max() <= pd.Timedelta(days=7)
    assert set(labels["is_fraud"].unique()) == {0, 1}
    assert ((labels["scenario"] > 0) == (labels["is_fraud"] == 1)).all()


def test_fraud_rate_and_scenarios_within_bounds_for_small_profile(
    small_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    config = SimulatorConfig.small(seed=42)
    _, labels = small_history
    stats = FraudStats.of([labels["scenario"].to_numpy()])
    assert check_bounds(config, stats) == []
    assert 0.004 <= stats.fraud_rate <= 0.015
    assert all(stats.per_scenario[s] > 0 for s in (1, 2, 3))
    assert stats.per_scenario[4] == 0  # off by default


def test_scenario_rules_hold_row_by_row(
    small_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    transactions, labels = small_history
    joined = transactions.assign(scenario=labels["scenario"].to_numpy())
    legit = joined[joined["scenario"] == 0]
    assert (legit["amount"] <= 220).all()  # scenario 1 takes every amount above 220
    # scenario 2: a compromised terminal's transactions are fraud on consecutive days
    per_terminal = joined[joined["scenario"] == 2].groupby("terminal_id")["event_time"]
    assert (per_terminal.max() - per_terminal.min()).max() < pd.Timedelta(days=28)


def test_card_testing_appears_only_after_the_switch() -> None:
    switch = 10
    config = SimulatorConfig.small(seed=42, new_pattern_from_day=switch)
    transactions, labels = simulate_history(config, 20, START)
    testing = labels[labels["scenario"] == 4]
    first_on = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=switch)
    assert len(testing) >= 10
    assert testing["event_time"].min() >= pd.Timestamp(first_on)
    rows = transactions.set_index("transaction_id").loc[testing["transaction_id"]]
    assert rows["amount"].between(0.5, 5.0).all()
    # the days before the switch are unchanged by switching it on
    before, _ = simulate_history(SimulatorConfig.small(seed=42), switch, START)
    head = transactions[transactions["event_time"] < pd.Timestamp(first_on)]
    pd.testing.assert_frame_equal(head.reset_index(drop=True), before)


def test_read_history_selects_days_and_refuses_missing(tmp_path: Path) -> None:
    write_history(tmp_path, SimulatorConfig.small(seed=5), 4, START)
    transactions, labels = read_history(tmp_path, start=date(2026, 1, 2), end=date(2026, 1, 3))
    days = set(transactions["event_time"].dt.date)
    assert days == {date(2026, 1, 2), date(2026, 1, 3)}
    assert set(labels["transaction_id"]) == set(transactions["transaction_id"])
    with pytest.raises(HistoryExists):
        write_history(tmp_path, SimulatorConfig.small(seed=5), 4, START)
    with pytest.raises(HistoryNotFound):
        read_history(tmp_path / "nothing")
