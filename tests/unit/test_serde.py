from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.commands.schemas import SCHEMA_DIR, render_schemas
from streams.events import Decision, Label, Transaction
from streams.pan import find_pan, luhn_valid
from streams.serde import Rejection, decision_decoder, encode, label_decoder, transaction_decoder
from tests.malformed import GOOD, KINDS, corpus_decoder, malformed_corpus

pytestmark = pytest.mark.unit


def test_good_transaction_decodes_with_defaults() -> None:
    tx = transaction_decoder.decode(json.dumps(GOOD).encode())
    assert isinstance(tx, Transaction)
    assert tx.transaction_id == "tx-0001"
    assert tx.event_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert tx.amount == 42.5
    assert tx.country is None and tx.schema_version == 1


def test_unknown_fields_are_ignored() -> None:
    tx = transaction_decoder.decode(json.dumps({**GOOD, "loyalty_tier": "gold"}).encode())
    assert isinstance(tx, Transaction)


@pytest.mark.parametrize(("payload", "expected"), malformed_corpus(KINDS + 1))
def test_each_kind_of_bad_input_gets_its_reason(payload: bytes, expected: str) -> None:
    result = corpus_decoder.decode(payload)
    assert isinstance(result, Rejection)
    assert result.reason == expected


def test_rejection_message_names_the_field() -> None:
    result = transaction_decoder.decode(json.dumps({**GOOD, "amount": "x"}).encode())
    assert isinstance(result, Rejection)
    assert "$.amount" in result.message


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5500000000000004", "378282246310005", "6011111111111117"]
)
def test_luhn_accepts_known_test_pans(number: str) -> None:
    assert luhn_valid(number)


def test_pan_check_ignores_non_luhn_digit_strings_and_numbers() -> None:
    assert find_pan(b'{"ref": "4111111111111112"}') is None
    assert find_pan(b'{"produced_at_ms": 4111111111111111}') is None
    assert find_pan(b'{"card_number": "tok_abc"}') is not None
    assert find_pan(b'{"x": "4111-1111-1111-1111"}') is not None


def test_label_round_trip() -> None:
    label = Label(
        transaction_id="tx1",
        label="fraud",
        analyst="ana",
        labelled_at=datetime(2026, 1, 2, tzinfo=UTC),
        source="chargeback",
    )
    assert label_decoder.decode(encode(label)) == label


def test_decision_round_trip_keeps_feature_vector() -> None:
    decision = Decision(
        transaction_id="tx1",
        card_id="K1",
        terminal_id="T1",
        event_time=datetime(2026, 1, 2, tzinfo=UTC),
        amount=10.0,
        score=0.93,
        decision="decline",
        model_version="v0001",
        feature_set="fs1",
        features=[1.0, 2.5, 0.0],
        timings_ms={"features": 1.2},
    )
    assert decision_decoder.decode(encode(decision)) == decision


def test_exported_json_schemas_are_current() -> None:
    """streams/schemas/ is what non-Python producers validate against: it must match the code."""
    for filename, text in render_schemas().items():
        assert (SCHEMA_DIR / filename).read_text() == text, (
            f"run `fraudctl schemas export` ({filename})"
        )


def test_json_schema_rejects_what_the_decoder_rejects() -> None:
    import jsonschema

    schema = json.loads((SCHEMA_DIR / "transaction.schema.json").read_text())
    jsonschema.validate(GOOD, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**GOOD, "amount": -1}, schema)
