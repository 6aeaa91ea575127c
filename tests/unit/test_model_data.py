from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.data import load_training_data, parse_column_overrides
from models.errors import DataError, MissingColumns


def user_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A handbook-style export: upper-case names, TX_DATETIME, TX_FRAUD."""
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2026-03-01") + pd.to_timedelta(
        np.sort(rng.uniform(0, 20 * 86400, n)), "s"
    )
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": times.strftime("%Y-%m-%d %H:%M:%S"),
            "CUSTOMER_ID": rng.integers(0, 50, n),
            "TERMINAL_ID": rng.integers(0, 80, n),
            "TX_AMOUNT": np.round(rng.gamma(2, 30, n), 2),
            "TX_FRAUD": (np.arange(n) % 25 == 0).astype(int),
        }
    )


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.unit
def test_handbook_export_loads_with_col_mapping_and_case_insensitive_names(tmp_path: Path) -> None:
    path = write(tmp_path, user_frame())
    columns = parse_column_overrides(["timestamp=TX_DATETIME", "amount=tx_amount"])
    assert columns == {"event_time": "TX_DATETIME", "amount": "tx_amount"}
    data = load_training_data(path, columns=columns, label_delay_days=7)
    tx, labels = data.transactions, data.labels
    assert list(tx.columns[:6]) == [
        "transaction_id",
        "event_time",
        "card_id",
        "customer_id",
        "terminal_id",
        "amount",
    ]
    assert tx["card_id"].equals(tx["customer_id"])  # no card column: the customer is the card
    assert str(tx["event_time"].dtype) == "datetime64[us, UTC]"
    assert labels["is_fraud"].dtype == np.int8
    assert int(labels["is_fraud"].sum()) == 12
    assert (labels["labelled_at"] - labels["event_time"]).eq(pd.Timedelta(days=7)).all()
    assert data.warnings == []
    assert len(data.fingerprint) == 64


@pytest.mark.unit
def test_parquet_and_separate_labels_file(tmp_path: Path) -> None:
    frame = user_frame()
    tx_path = write(
        tmp_path,
        frame.drop(columns=["TX_FRAUD"]).rename(
            columns={"TX_DATETIME": "timestamp", "TX_AMOUNT": "amount"}
        ),
        "tx.parquet",
    )
    labels_path = write(tmp_path, frame[["TRANSACTION_ID", "TX_FRAUD"]].iloc[::2], "labels.csv")
    data = load_training_data(tx_path, labels_path=labels_path)
    # only even rows are labelled; unlabelled rows count as legitimate
    assert int(data.labels["is_fraud"].sum()) == int(frame["TX_FRAUD"].iloc[::2].sum())


@pytest.mark.unit
def test_missing_columns_are_named_with_the_col_hint(tmp_path: Path) -> None:
    path = write(tmp_path, user_frame().drop(columns=["TERMINAL_ID"]))
    with pytest.raises(MissingColumns) as caught:
        load_training_data(path, columns={"event_time": "TX_DATETIME", "amount": "TX_AMOUNT"})
    assert caught.value.missing == ["terminal_id"]
    assert "--col terminal_id=<COLUMN>" in str(caught.value)
    with pytest.raises(DataError, match="--col amount=NOPE: no such column"):
        load_training_data(path, columns={"amount": "NOPE"})
    with pytest.raises(DataError, match="unknown role 'colour'"):
        parse_column_overrides(["colour=red"])


@pytest.mark.unit
def test_bad_values_name_their_rows(tmp_path: Path) -> None:
    mapping = {"event_time": "TX_DATETIME", "amount": "TX_AMOUNT"}
    frame = user_frame().astype({"TX_AMOUNT": object})
    frame.loc[[4, 9], "TX_AMOUNT"] = ["abc", None]
    with pytest.raises(DataError, match=r"TX_AMOUNT.*data rows 5, 10;"):
        load_training_data(write(tmp_path, frame), columns=mapping)
    frame = user_frame()
    frame.loc[2, "TX_DATETIME"] = "yesterday"
    with pytest.raises(DataError, match=r"unparsable timestamps \(data rows 3;"):
        load_training_data(write(tmp_path, frame), columns=mapping)
    frame = user_frame().astype({"TX_FRAUD": object})
    frame.loc[7, "TX_FRAUD"] = "maybe"
    with pytest.raises(DataError, match=r"label column 'TX_FRAUD'.*data rows 8;"):
        load_training_data(write(tmp_path, frame), columns=mapping)


@pytest.mark.unit
def test_duplicates_unsorted_rows_and_bad_amounts_are_warnings_naming_rows(tmp_path: Path) -> None:
    frame = user_frame()
    frame.loc[10, "TRANSACTION_ID"] = frame.loc[3, "TRANSACTION_ID"]
    frame.loc[20, "TX_AMOUNT"] = 0.0
    frame.loc[[30, 31]] = frame.loc[[31, 30]].to_numpy()
    mapping = {"event_time": "TX_DATETIME", "amount": "TX_AMOUNT"}
    data = load_training_data(write(tmp_path, frame), columns=mapping)
    assert data.warnings == [
        "1 duplicated transaction_id(s) dropped, first kept (data rows 11)",
        "1 row(s) with amount <= 0 dropped, as the scorer would (data rows 21)",
        "timestamps not in order at 1 row(s); sorted by time (data rows 32)",
    ]
    assert len(data.transactions) == 298
    assert data.transactions["event_time"].is_monotonic_increasing


@pytest.mark.unit
def test_no_fraud_and_too_few_rows_are_errors(tmp_path: Path) -> None:
    mapping = {"event_time": "TX_DATETIME", "amount": "TX_AMOUNT"}
    frame = user_frame().assign(TX_FRAUD=0)
    with pytest.raises(DataError, match="no fraud at all"):
        load_training_data(write(tmp_path, frame), columns=mapping)
    with pytest.raises(DataError, match="too few rows: 50"):
        load_training_data(write(tmp_path, user_frame(n=50)), columns=mapping)
    with pytest.raises(DataError, match="unsupported file type"):
        load_training_data(write(tmp_path, user_frame(), "tx.csv").rename(tmp_path / "tx.xlsx"))
