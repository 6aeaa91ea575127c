"""``fraudctl produce`` reads a file as ``train`` does and judges it as the scorer does."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

from models.data import load_training_data, parse_column_overrides
from streams.events import Transaction
from streams.serde import Rejection, transaction_decoder
from streams.tables import TableError
from streams.transaction_file import read_records
from tests.own_data import COL_ARGS, generate

pytestmark = pytest.mark.unit


def columns() -> dict[str, str]:
    return parse_column_overrides([arg.removeprefix("--col=") for arg in COL_ARGS])


def test_a_csv_row_is_sent_with_the_values_train_reads(tmp_path: Path) -> None:
    data = generate(cards=60, terminals=30, days=21, test_days=3)
    path = data.write(tmp_path / "own.csv")
    loaded = load_training_data(path, columns=columns()).transactions.set_index("transaction_id")
    sent = [transaction_decoder.decode(r.payload) for r in read_records(path, columns())]
    assert all(isinstance(tx, Transaction) for tx in sent)
    frame = pd.DataFrame([msgspec.structs.asdict(tx) for tx in sent]).set_index("transaction_id")
    frame = frame.loc[loaded.index]
    for field in ("card_id", "customer_id", "terminal_id", "merchant_category", "channel"):
        assert frame[field].tolist() == loaded[field].tolist(), field
    assert frame["amount"].tolist() == loaded["amount"].tolist()
    assert (pd.to_datetime(frame["event_time"], utc=True) == loaded["event_time"]).all()
    assert set(frame["merchant_category"]) >= {"0742", "5411"}
    assert set(frame["channel"]) == {"pos", "ecom", "atm"}  # an empty cell is the default


def test_rejects_carry_the_line_and_the_scorers_reason(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "transaction_id,event_time,card_id,terminal_id,amount,channel\n"
        "t1,2026-03-02 10:00:00,c1,p1,12.5,pos\n"
        "t2,2026-03-02 10:00:01,c1,p1,abc,pos\n"
        "t3,not a time,c1,p1,3,pos\n"
        "t4,2026-03-02 10:00:03,,p1,3,pos\n"
        "t5,2026-03-02 10:00:04,c1,p1,3,teleport\n"
        "t6,2026-03-02 10:00:05,4111111111111111,p1,3,pos\n"
    )
    results = {
        r.line: transaction_decoder.decode(r.payload) for r in read_records(path, columns={})
    }
    assert isinstance(results[2], Transaction)
    assert results[2].event_time.isoformat() == "2026-03-02T10:00:00+00:00"
    assert results[2].customer_id == "c1"  # no customer column: the card stands for it
    reasons = {line: r.reason for line, r in results.items() if isinstance(r, Rejection)}
    assert reasons == {
        3: "wrong_type",
        4: "invalid_value",
        5: "missing_field",
        6: "invalid_value",
        7: "pan_not_allowed",
    }


def test_json_lines_are_sent_byte_for_byte_with_their_line_numbers(tmp_path: Path) -> None:
    good = {
        "transaction_id": "tx-1",
        "event_time": "2026-03-02T10:00:00Z",
        "card_id": "card-1",
        "customer_id": "cust-1",
        "terminal_id": "term-1",
        "amount": 12.5,
    }
    text = json.dumps(good) + "\n\n" + '{"transaction_id": "tx-2"}\r\n'
    path = tmp_path / "tx.jsonl"
    path.write_text(text)
    records = list(read_records(path))
    assert [r.line for r in records] == [1, 3]
    assert records[0].payload == json.dumps(good).encode()
    assert isinstance(transaction_decoder.decode(records[0].payload), Transaction)
    second = transaction_decoder.decode(records[1].payload)
    assert isinstance(second, Rejection) and second.reason == "missing_field"
    with pytest.raises(TableError, match="--col maps the columns of a table"):
        list(read_records(path, {"amount": "AMT"}))


def test_a_table_without_a_role_names_it_with_the_col_hint(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    pd.DataFrame({"id": ["t1"], "when": ["2026-03-02"], "card": ["c"], "amt": [1.0]}).to_csv(
        path, index=False
    )
    with pytest.raises(TableError) as caught:
        list(read_records(path))
    message = str(caught.value)
    assert "transaction_id" in message and "event_time" in message
    assert "terminal_id" in message and "--col terminal_id=<COLUMN>" in message
    mapped = {"transaction_id": "id", "event_time": "when", "terminal_id": "card"}
    assert np.array_equal([r.line for r in read_records(path, mapped)], [2])
