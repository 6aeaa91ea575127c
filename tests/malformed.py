"""A corpus of malformed transaction payloads, each with the DLQ reason it must get.

The reasons hold for a decoder that bounds ``event_time`` from above (any ``now`` before
year 9999); the other kinds fail before the time check.
"""

from __future__ import annotations

import json
import random

from streams.serde import EventTimeBounds, transaction_decoder

GOOD: dict[str, object] = {
    "transaction_id": "tx-0001",
    "event_time": "2026-11-23T10:00:00Z",
    "card_id": "K000001",
    "customer_id": "U000001",
    "terminal_id": "T000001",
    "amount": 42.5,
    "currency": "EUR",
    "merchant_category": "5411",
    "channel": "pos",
}


def _with(**changes: object) -> dict[str, object]:
    out = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()

corpus_decoder = transaction_decoder.with_bounds(EventTimeBounds(max_age_s=None))
"""Bounds ``event_time`` from above only, so the corpus's fixed dates never age out."""
KINDS = 18
"""How many kinds of bad input the corpus cycles through."""


def malformed_corpus(count: int, seed: int = 7) -> list[tuple[bytes, str]]:
    """``count`` payloads cycling through every kind of bad input, with expected reasons."""
    rng = random.Random(seed)
    makers = [
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}")).encode()[: rng.randint(5, 60)],
            "invalid_json",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", amount="12.00")).encode(),
            "wrong_type",
        ),
        lambda i: (json.dumps(_with(transaction_id=f"tx-{i}", card_id=123)).encode(), "wrong_type"),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", amount=-rng.uniform(1, 500))).encode(),
            "out_of_range",
        ),
        lambda i: (json.dumps(_with(transaction_id=_DROP)).encode(), "missing_field"),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", card_id=_DROP)).encode(),
            "missing_field",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", pan="4111111111111111")).encode(),
            "pan_not_allowed",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", memo="5500 0000 0000 0004")).encode(),
            "pan_not_allowed",
        ),
        lambda i: (b"\xff\xfe\x00" + json.dumps(GOOD).encode(), "invalid_utf8"),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", channel="telepathy")).encode(),
            "invalid_value",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", schema_version=99)).encode(),
            "unsupported_version",
        ),
        lambda i: (b"", "invalid_json"),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}")).encode()[:-1]
            + b', "x": '
            + b"[" * 1000
            + b"]" * 1000
            + b"}",
            "too_deep",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}")).encode()[:-1] + b', "amount": 1e6}',
            "duplicate_field",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}")).encode()[:-1]
            + b', "memo": "\\u0034111111111111111"}',
            "pan_not_allowed",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", memo="ref x4111111111111111")).encode(),
            "pan_not_allowed",
        ),
        lambda i: (
            json.dumps(_with(transaction_id=f"tx-{i}", event_time="9999-12-31T23:59:59Z")).encode(),
            "event_time_out_of_range",
        ),
        lambda i: (json.dumps(_with(transaction_id=f"tx-{i}\n")).encode(), "invalid_value"),
    ]
    assert len(makers) == KINDS
    corpus = [makers[i % len(makers)](i) for i in range(count)]
    for i in range(0, count, 200):  # a few 5 MB blobs; more would only slow the broker down
        corpus[i] = (
            b'{"transaction_id": "tx-%d", "pad": "' % i + b"x" * BLOB_BYTES + b'"}',
            "too_large",
        )
    return corpus


BLOB_BYTES = 5 * 1024 * 1024
