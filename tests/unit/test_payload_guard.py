"""The payload guard: one C pass that lets the usual payload skip the exact input checks.

The property that matters: whenever the C pass calls a payload clean, the exact checks
(UTF-8, depth, card numbers, duplicate fields) pass it too, so every decoder returns the
same result with the pass as without it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.jsonscan import clean_flat_object
from streams.serde import Decoder, EventTimeBounds, label_decoder, review_case_decoder
from streams.serde import transaction_decoder as contract_decoder
from tests.malformed import GOOD

pytestmark = pytest.mark.unit

TRANSACTIONS = contract_decoder.with_bounds(EventTimeBounds(max_age_s=None))
DECODERS: list[Decoder[Any]] = [TRANSACTIONS, label_decoder, review_case_decoder]
PAN = "4111111111111111"


def _tx(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def _exact(decoder: Decoder[Any], payload: bytes, monkeypatch: pytest.MonkeyPatch) -> object:
    """What ``decoder`` returns with the C pass saying "not sure" for everything."""
    with monkeypatch.context() as patched:
        patched.setattr("streams.serde.clean_flat_object", lambda _: False)
        return decoder.decode(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b' { "a" : 1 , "b" : "x" } \n',
        _tx(),
        _tx(device_id="dev-1234-5678-9012"),  # 12 digits in a run: no card number fits
        _tx(card_id="K 1234 5678  9012-3456"),  # two separators in a row end a run
        json.dumps({"n": -0.5e-3, "t": True, "f": False, "z": None}).encode(),
        json.dumps({"x": PAN, "y": 1}).replace(f'"{PAN}"', PAN).encode(),  # a number
    ],
)
def test_flat_plain_objects_are_clean(payload: bytes) -> None:
    assert clean_flat_object(payload)


@pytest.mark.parametrize(
    "payload",
    [
        _tx(memo=PAN),
        _tx(memo="4111 1111 1111 1111"),
        _tx(memo="x4111-1111-1111-1"),  # 13 digits joined by single separators
        _tx(memo="2026.12.06.1234.5"),
        json.dumps({**GOOD, PAN: 1}).encode(),  # keys are strings too
        json.dumps({**GOOD, "Card_Number": "tok"}).encode(),
        json.dumps({**GOOD, "PAN": "tok"}).encode(),
        json.dumps({**GOOD, "primaryAccount_number": "tok"}).encode(),
        b'{"amount": 1.0, "amount": 9999.0}',
        b'{"a\\u006d": 1}',  # an escape: the exact checks read it
        _tx(memo="caf\u00e9").replace(b"\\u00e9", "\u00e9".encode()),  # non-ASCII text
        _tx(memo="\uff14111"),  # escaped by json.dumps
        b'{"a": {"b": 1}}',
        b'{"a": [1]}',
        b'{"a": 01}',
        b'{"a": 1.}',
        b'{"a": 1e}',
        b'{"a": -}',
        b'{"a": tru}',
        b'{"a": nul}',
        b'{"a": 1,}',
        b'{"a": 1} x',
        b'{"a": 1}{"b": 2}',
        b'{"a": "x\ty"}',  # a raw control character is not JSON
        b'{"a": "unterminated}',
        b'{"a" 1}',
        b"{a: 1}",
        b"[]",
        b"",
        b"   ",
        b'"just a string"',
        ("{" + ",".join(f'"k{i}": {i}' for i in range(60)) + "}").encode(),  # many keys
    ],
)
def test_anything_else_is_left_to_the_exact_checks(payload: bytes) -> None:
    assert not clean_flat_object(payload)


def test_every_pan_field_spelling_is_left_to_the_exact_checks() -> None:
    for name in ("pan", "ccn", "cardnumber", "cc_number", "ccnumber", "primary_account_number"):
        for spelled in (name, name.upper(), name.title()):
            assert not clean_flat_object(json.dumps({**GOOD, spelled: "x"}).encode()), spelled


_KEYS = st.sampled_from(
    [*GOOD, "pan", "PAN", "card_number", "memo", "note", "x", "transaction_id"]
) | st.text(alphabet="abcdefgh_0123456789", max_size=6)
_TEXT = st.text(alphabet='0123456789 -.xK\\"\u00e9\uff14\t', max_size=40)
_VALUES = (
    _TEXT
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=2)
)


@st.composite
def _payloads(draw: st.DrawFn) -> bytes:
    """Flat-ish objects from keys and values a fraudster would vary (duplicate keys,
    card-number names, digit runs, escapes), written out by hand so that duplicates
    survive, then sometimes cut or given a stray byte."""
    pairs = draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=8))
    spaces = draw(st.sampled_from(["", " ", "\n "]))
    body = f",{spaces}".join(f"{json.dumps(k)}:{spaces}{json.dumps(v)}" for k, v in pairs)
    raw = ("{" + spaces + body + spaces + "}").encode()
    if not draw(st.booleans()):
        raw = raw.replace(b"\\u00e9", "\u00e9".encode())
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    return draw(st.sampled_from([raw, raw[:cut], raw[:cut] + b"}", raw + b" x"]))


@settings(max_examples=1_500, deadline=None, database=None, suppress_health_check=[*HealthCheck])
@given(_payloads())
def test_every_decoder_returns_what_the_exact_checks_alone_return(payload: bytes) -> None:
    patch = pytest.MonkeyPatch()
    try:
        for decoder in DECODERS:
            assert decoder.decode(payload) == _exact(decoder, payload, patch)
        if clean_flat_object(payload):
            assert all(d._guard(payload) is None for d in DECODERS)
    finally:
        patch.undo()


@settings(max_examples=1_500, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_bytes_of_any_kind_are_never_called_clean_wrongly(payload: bytes) -> None:
    if clean_flat_object(payload):
        assert all(d._guard(payload) is None for d in DECODERS)
        json.loads(payload)  # valid JSON, or the C pass would not be sure
