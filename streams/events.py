"""Versioned event schemas: one msgspec Struct per topic payload.

Each event carries ``schema_version``. Decoding is strict: unknown fields are ignored
(forward compatibility), but missing, ill-typed or out-of-range fields are rejected with a
precise reason (see :mod:`streams.serde`). JSON Schemas for non-Python producers are
exported from these classes by ``fraudctl schemas export`` into ``streams/schemas/``.
"""

from __future__ import annotations

import re
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$(?!\n)"
CURRENCY_PATTERN = r"^[A-Z]{3}$(?!\n)"
MERCHANT_CATEGORY_PATTERN = r"^[0-9]{4}$(?!\n)"
COUNTRY_PATTERN = r"^[A-Z]{2}$(?!\n)"
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""Letters, digits and ``_.:-``. Python's ``$`` also matches before a final newline, so
``(?!\n)`` refuses ``"t1\n"``; written this way (not ``\\Z``) the exported JSON Schema
pattern means the same to ECMA-262 validators."""
Version = Annotated[int, Meta(ge=1, le=SCHEMA_VERSION)]
"""Every event's ``schema_version``: this code refuses versions it does not understand."""
Amount = Annotated[float, Meta(gt=0.0, le=1_000_000.0)]
Currency = Annotated[str, Meta(pattern=CURRENCY_PATTERN)]
MerchantCategory = Annotated[str, Meta(pattern=MERCHANT_CATEGORY_PATTERN)]
Country = Annotated[str, Meta(pattern=COUNTRY_PATTERN)]
Name = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$(?!\n)")]
"""A person's or a system's name: printable, no control characters (logs stay one line)."""
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]

Channel = Literal["pos", "ecom", "atm", "moto"]
DecisionOutcome = Literal["approve", "review", "decline"]
LabelValue = Literal["fraud", "legit"]
LabelSource = Literal["analyst", "chargeback", "oracle"]
ModelEventKind = Literal[
    "registered", "promoted", "rolled_back", "rejected", "drift_report", "quality_report"
]
DeadLetterReason = Literal[
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "invalid_value",
    "pan_not_allowed",
    "too_deep",
    "duplicate_field",
    "event_time_out_of_range",
    "unsupported_version",
    "unknown_transaction",
    "processing_error",
]


def _checked_by_decoder(
    pattern: str, min_length: int | None = None, max_length: int | None = None
) -> Meta:
    """A text pattern stated in the JSON Schema that msgspec does not run: see
    :func:`transaction_text_error`."""
    return Meta(
        min_length=min_length, max_length=max_length, extra_json_schema={"pattern": pattern}
    )


TxId = Annotated[str, _checked_by_decoder(ID_PATTERN, min_length=1, max_length=64)]
TxCurrency = Annotated[str, _checked_by_decoder(CURRENCY_PATTERN)]
TxMerchantCategory = Annotated[str, _checked_by_decoder(MERCHANT_CATEGORY_PATTERN)]
TxCountry = Annotated[str, _checked_by_decoder(COUNTRY_PATTERN)]


# A transaction's text fields have the patterns of Id and the others, but the decoders
# (streams.serde.Decoder) check them with transaction_text_error, not msgspec: msgspec runs
# one regular expression per field, most of a transaction's decode time. (The docstring
# below is the published JSON Schema's description.)
class Transaction(Struct, frozen=True, kw_only=True):
    """A card transaction as producers send it to ``transactions`` (key: card_id).

    Never carries a raw card number: ``card_id`` is a token issued upstream.
    """

    transaction_id: TxId
    event_time: AwareDatetime
    card_id: TxId
    customer_id: TxId
    terminal_id: TxId
    amount: Amount
    currency: TxCurrency = "EUR"
    merchant_category: TxMerchantCategory = "5411"
    channel: Channel = "pos"
    country: TxCountry | None = None
    device_id: TxId | None = None
    schema_version: Version = SCHEMA_VERSION


TRANSACTION_TEXT_PATTERNS = {
    "transaction_id": ID_PATTERN,
    "card_id": ID_PATTERN,
    "customer_id": ID_PATTERN,
    "terminal_id": ID_PATTERN,
    "currency": CURRENCY_PATTERN,
    "merchant_category": MERCHANT_CATEGORY_PATTERN,
    "country": COUNTRY_PATTERN,
    "device_id": ID_PATTERN,
}
"""Each text field of :class:`Transaction` and its pattern, in field order."""
_FIELD_PATTERN = {f: re.compile(p) for f, p in TRANSACTION_TEXT_PATTERNS.items()}
_REQUIRED_TEXT = tuple(f for f in TRANSACTION_TEXT_PATTERNS if f not in ("country", "device_id"))
_required_text = attrgetter(*_REQUIRED_TEXT)
_END = "$(?!\\n)"


def _body(field: str) -> str:
    """A field's pattern ``^X$(?!\\n)`` (the whole string is an X) as ``(?:X)``."""
    pattern = TRANSACTION_TEXT_PATTERNS[field]
    if not (pattern.startswith("^") and pattern.endswith(_END)):
        raise ValueError(f"not an anchored pattern: {pattern!r}")
    return f"(?:{pattern[1 : -len(_END)]})"


_ALL_REQUIRED = re.compile("\0".join(map(_body, _REQUIRED_TEXT)))
"""The required text fields joined by NUL, in one expression: none of the patterns admits
a NUL, so a value holding one cannot shift the fields and pass."""
_COUNTRY, _DEVICE = _FIELD_PATTERN["country"], _FIELD_PATTERN["device_id"]


def transaction_text_error(tx: Transaction) -> tuple[str, str] | None:
    """The first text field of ``tx`` that its pattern refuses, and the pattern; None when
    all match. The usual transaction costs one regular expression over its required text
    (and one per optional field present); only a refused one is looked at field by field,
    with the very expressions msgspec runs."""
    country, device = tx.country, tx.device_id
    if (
        _ALL_REQUIRED.fullmatch("\0".join(_required_text(tx))) is not None
        and (country is None or _COUNTRY.search(country) is not None)
        and (device is None or _DEVICE.search(device) is not None)
    ):
        return None
    for name, pattern in _FIELD_PATTERN.items():
        value = getattr(tx, name)
        if value is not None and pattern.search(value) is None:
            return name, pattern.pattern
    return None


class Reason(Struct, frozen=True, kw_only=True):
    """One explanation of a score: a feature, its value and its contribution (log-odds)."""

    feature: str
    value: float
    contribution: float
    text: str


class Decision(Struct, frozen=True, kw_only=True):
    """The scorer's verdict for one transaction, on ``transactions.scored`` (the audit log).

    ``features`` is the exact vector the model saw, in the order of ``feature_set``.
    ``timings_ms`` holds the batch's per-stage durations; ``latency_ms`` is the time from
    the transaction's produce timestamp to the decision. ``reasons`` is empty on the
    stream (a flagged transaction's reasons come with its review case, computed after the
    decision is sent) and filled in the REST API's answers.
    """

    transaction_id: Id
    card_id: Id
    terminal_id: Id
    event_time: AwareDatetime
    amount: float
    score: Probability
    decision: DecisionOutcome
    model_version: str
    feature_set: str
    features: list[float]
    reasons: list[Reason] = []
    timings_ms: dict[str, float] = {}
    latency_ms: float | None = None
    decided_at: AwareDatetime | None = None
    submitted_by: str | None = None
    """The identity of the API key that submitted the transaction (None: the stream)."""
    schema_version: Version = SCHEMA_VERSION


class ReviewCase(Struct, frozen=True, kw_only=True):
    """A flagged transaction waiting for an analyst, on ``fraud.review`` (key: card_id)."""

    case_id: Id
    transaction: Transaction
    score: Probability
    decision: DecisionOutcome
    model_version: str
    reasons: list[Reason] = []
    created_at: AwareDatetime | None = None
    schema_version: Version = SCHEMA_VERSION


class Label(Struct, frozen=True, kw_only=True):
    """Ground truth for one transaction, on ``fraud.labels`` (key: transaction_id)."""

    transaction_id: Id
    label: LabelValue
    analyst: Name
    labelled_at: AwareDatetime
    source: LabelSource = "analyst"
    note: Annotated[str, Meta(max_length=2000)] | None = None
    schema_version: Version = SCHEMA_VERSION


class ModelEvent(Struct, frozen=True, kw_only=True):
    """A model lifecycle event on ``model.events``: promotion, rollback, drift report..."""

    kind: ModelEventKind
    model_version: str
    at: AwareDatetime
    previous_version: str | None = None
    reasons: list[str] = []
    details: dict[str, Any] = {}
    event_id: str | None = None
    """Unique per event: delivery is at least once, so a consumer drops an id it has seen."""
    schema_version: Version = SCHEMA_VERSION


class DeadLetter(Struct, frozen=True, kw_only=True):
    """A record that could not be processed, with what is needed to replay or fix it.

    ``original`` is the refused bytes only when they were proven to hold no card number
    (``redacted`` false); otherwise a redacted copy. ``original_sha256`` / ``original_bytes``
    describe the exact bytes received; ``truncated`` marks an original cut to its head.
    """

    source_topic: str
    partition: int
    offset: int
    reason: DeadLetterReason
    message: str
    original: bytes
    key: bytes | None = None
    failed_at: AwareDatetime | None = None
    original_sha256: str | None = None
    original_bytes: int | None = None
    redacted: bool = False
    truncated: bool = False
    schema_version: Version = SCHEMA_VERSION


EVENT_TYPES: dict[str, type[Struct]] = {
    "transaction": Transaction,
    "decision": Decision,
    "review_case": ReviewCase,
    "label": Label,
    "model_event": ModelEvent,
    "dead_letter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, object]]:
    """JSON Schema (draft 2020-12) for every event type, keyed by event name."""
    out: dict[str, dict[str, object]] = {}
    for name, cls in EVENT_TYPES.items():
        schema = msgspec.json.schema(cls)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"{cls.__name__} v{SCHEMA_VERSION}"
        out[name] = schema
    return out
