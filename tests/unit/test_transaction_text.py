"""A transaction's text patterns, checked by the decoder instead of msgspec.

``Transaction`` states its fields' patterns in the JSON Schema only; the decoders check
them with :func:`transaction_text_error`. The oracle here is msgspec itself: a twin
struct whose fields carry the patterns as msgspec constraints. Whatever the text, the
decoder must accept exactly what the twin accepts and word a refusal as msgspec does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import (
    TRANSACTION_TEXT_PATTERNS,
    ReviewCase,
    Transaction,
    transaction_text_error,
)
from streams.serde import Rejection, encode, review_case_decoder, transaction_decoder

pytestmark = pytest.mark.unit


def _strict(annotation: Any) -> Any:
    """``annotation`` with a pattern left to the decoder made a msgspec constraint again."""
    if get_origin(annotation) is Annotated:
        base, *metas = get_args(annotation)
        out = []
        for meta in metas:
            pattern = (meta.extra_json_schema or {}).get("pattern")
            if pattern is not None:
                meta = msgspec.Meta(
                    pattern=pattern, min_length=meta.min_length, max_length=meta.max_length
                )
            out.append(meta)
        return Annotated[(base, *out)]
    if get_origin(annotation) in (Union, UnionType):
        return Union[tuple(_strict(a) for a in get_args(annotation))]  # noqa: UP007
    return annotation


_hints = get_type_hints(Transaction, include_extras=True)
_fields = Transaction.__struct_fields__
_given = Transaction.__struct_defaults__
_defaults = dict(zip(_fields[len(_fields) - len(_given) :], _given, strict=True))
StrictTransaction = msgspec.defstruct(
    "StrictTransaction",
    [
        (f, _strict(_hints[f]), _defaults[f]) if f in _defaults else (f, _strict(_hints[f]))
        for f in _fields
    ],
    kw_only=True,
    frozen=True,
)
"""Transaction with every pattern run by msgspec (how it was decoded before)."""
_strict_decoder = msgspec.json.Decoder(StrictTransaction)
TEXT = list(TRANSACTION_TEXT_PATTERNS)


def _base() -> dict[str, Any]:
    return {
        "transaction_id": "tx-1",
        "event_time": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        "card_id": "card_0001",
        "customer_id": "cust_0001",
        "terminal_id": "term_0001",
        "amount": 12.5,
        "currency": "EUR",
        "merchant_category": "5411",
        "channel": "pos",
        "country": "FR",
        "device_id": "dev:7.a-b_c",
    }


def _strict_verdict(payload: bytes) -> str | None:
    """msgspec's own message when the strict twin refuses, else None."""
    try:
        _strict_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def _verdict(payload: bytes) -> str | None:
    result = transaction_decoder.decode(payload)
    if isinstance(result, Rejection):
        return result.message
    assert isinstance(result, Transaction)
    return None


# Text near the patterns' edges: their characters, the ones next to them, NUL (the
# separator of the one-expression check), newlines (Python's `$` matches before one),
# non-ASCII letters and digits, empty strings.
_ALPHABET = st.sampled_from([*"aZ09_.:-", "\0", "\n", "\r", " ", "/", "é", "٣", "Ａ", "\\"])
_NEAR = st.text(_ALPHABET, max_size=6)
_VALUES = st.one_of(
    _NEAR,
    st.sampled_from(["EUR", "eur", "EU", "5411", "541", "54111", "FR", "fr", "a", "x\n"]),
    st.text(max_size=4),
)


@settings(max_examples=1000, deadline=None)
@given(field=st.sampled_from(TEXT), value=_VALUES, other=st.sampled_from(TEXT), value2=_VALUES)
def test_the_decoder_accepts_exactly_what_msgspec_patterns_accept(
    field: str, value: str, other: str, value2: str
) -> None:
    doc = _base()
    doc[field] = value
    doc[other] = value2
    payload = json.dumps(doc).encode()
    assert (_verdict(payload) is None) == (_strict_verdict(payload) is None)


@settings(max_examples=1000, deadline=None)
@given(field=st.sampled_from(TEXT), value=_VALUES)
def test_one_wrong_field_is_refused_in_msgspecs_words(field: str, value: str) -> None:
    """With one field wrong the message is msgspec's, word for word. (With several, msgspec
    named the first in the payload; the decoder now names a wrong pattern only once
    everything else decoded, so a payload with two faults may name the other one.)"""
    doc = _base()
    doc[field] = value
    payload = json.dumps(doc).encode()
    assert _verdict(payload) == _strict_verdict(payload)


@pytest.mark.parametrize("field", TEXT)
def test_each_field_is_refused_with_msgspecs_words(field: str) -> None:
    doc = _base()
    doc[field] = "no way!"
    payload = json.dumps(doc).encode()
    message = _verdict(payload)
    assert message is not None and message.endswith(f"- at `$.{field}`")
    assert message == _strict_verdict(payload)


def test_a_nul_cannot_move_text_between_fields() -> None:
    """Joined by NUL, ``card_id="a\\0b"`` plus one field fewer would line up again: every
    such split is refused."""
    doc = _base()
    doc["card_id"] = "card\u0000cust"
    doc["transaction_id"] = "tx\u0000"
    assert _verdict(json.dumps(doc).encode()) is not None
    tx = transaction_decoder.decode(json.dumps(_base()).encode())
    assert isinstance(tx, Transaction)
    shifted = msgspec.structs.replace(tx, customer_id="EUR\u00005411", currency="x")
    expected = ("customer_id", TRANSACTION_TEXT_PATTERNS["customer_id"])
    assert transaction_text_error(shifted) == expected


def test_optional_fields_may_be_absent_never_empty() -> None:
    doc = _base()
    del doc["country"], doc["device_id"]
    assert _verdict(json.dumps(doc).encode()) is None
    for field in ("country", "device_id"):
        doc = _base()
        doc[field] = ""
        payload = json.dumps(doc).encode()
        assert _verdict(payload) == _strict_verdict(payload) is not None


def test_a_review_cases_transaction_is_checked_with_its_path() -> None:
    tx = transaction_decoder.decode(json.dumps(_base()).encode())
    assert isinstance(tx, Transaction)
    case = ReviewCase(case_id="c1", transaction=tx, score=0.9, decision="review", model_version="m")
    assert isinstance(review_case_decoder.decode(encode(case)), ReviewCase)
    bad = msgspec.structs.replace(case, transaction=msgspec.structs.replace(tx, card_id="1 2"))
    refused = review_case_decoder.decode(encode(bad))
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_value"
    assert refused.message.endswith("- at `$.transaction.card_id`")


def test_the_published_schema_keeps_the_patterns() -> None:
    schema = msgspec.json.schema(Transaction)
    fields = schema["$defs"]["Transaction"]["properties"]
    for name, pattern in TRANSACTION_TEXT_PATTERNS.items():
        spec = fields[name]
        found = spec.get("pattern") or next(s["pattern"] for s in spec["anyOf"] if "pattern" in s)
        assert found == pattern
