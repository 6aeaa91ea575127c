"""Decoding a batch at once (the card-number scan over the whole batch, per payload only
when the batch may hold one) gives each payload exactly what decoding it alone gives."""

from __future__ import annotations

import json
import random

import pytest

from streams.events import Transaction
from streams.pan import none_holds_pan
from streams.serde import Decoder, EventTimeBounds, Rejection, transaction_decoder
from tests.malformed import GOOD, corpus_decoder, malformed_corpus

pytestmark = pytest.mark.unit

CLEAN = [
    json.dumps({**GOOD, "transaction_id": f"tx-{i}", "amount": i + 0.5}).encode() for i in range(40)
]
CARD_NUMBERS = [
    json.dumps({**GOOD, "memo": "4111111111111111"}).encode(),
    json.dumps({**GOOD, "memo": "4111 1111 1111 1111"}).encode(),
    json.dumps({**GOOD, "memo": "4111-1111-1111-1111"}).encode(),
    json.dumps({**GOOD, "device_id": "x4111111111111111"}).encode(),
    json.dumps({**GOOD, "memo": "４１１１１１１１１１１１１１１１"}, ensure_ascii=False).encode(),
    json.dumps({**GOOD}).encode()[:-1] + b', "memo": "\\u0034111111111111111"}',
    json.dumps({**GOOD, "PAN": "x"}).encode(),
    json.dumps({**GOOD}).encode()[:-1] + b', "card_number"\n : 1}',
]
"""Each one is refused alone; hidden among clean payloads it must be refused too."""


def _same(decoder: Decoder, payloads: list[bytes | None]) -> list[object]:
    window = decoder.window()
    together = decoder.decode_many(payloads, window)
    alone = [decoder.decode(p, window) for p in payloads]
    assert together == alone
    return together


@pytest.mark.parametrize("hidden", CARD_NUMBERS)
def test_one_card_number_among_clean_payloads_is_still_refused(hidden: bytes) -> None:
    batch: list[bytes | None] = [*CLEAN[:20], hidden, *CLEAN[20:]]
    assert not none_holds_pan([p for p in batch if p])
    results = _same(corpus_decoder, batch)
    assert isinstance(results[20], Rejection) and results[20].reason == "pan_not_allowed"
    assert sum(isinstance(r, Rejection) for r in results) == 1


def test_a_clean_batch_skips_the_scan_and_decodes_alike() -> None:
    assert none_holds_pan(CLEAN)
    assert not any(isinstance(r, Rejection) for r in _same(corpus_decoder, list(CLEAN)))


def test_digits_split_across_two_payloads_are_not_a_card_number() -> None:
    tail, head = b'{"memo": "x4111111', b'111111111"}'  # 16 digits only if joined bare
    assert none_holds_pan([tail, head])  # the separator keeps them apart
    results = _same(corpus_decoder, [tail, head])
    reasons = [r.reason for r in results if isinstance(r, Rejection)]
    assert len(reasons) == 2 and "pan_not_allowed" not in reasons


def test_the_malformed_corpus_gets_the_same_reasons_in_batches() -> None:
    corpus = malformed_corpus(600, seed=11)
    rng = random.Random(3)
    payloads: list[bytes | None] = [p for p, _ in corpus] + list(CLEAN) + [None, b""]
    rng.shuffle(payloads)
    for start in range(0, len(payloads), 37):
        _same(corpus_decoder, payloads[start : start + 37])
    expected = {p: reason for p, reason in corpus}
    results = corpus_decoder.decode_many([p for p, _ in corpus])
    for (payload, _), result in zip(corpus, results, strict=True):
        assert isinstance(result, Rejection) and result.reason == expected[payload]


def test_a_decoder_without_the_scan_is_unchanged() -> None:
    free = Decoder(Transaction, check_pan=False)
    payloads: list[bytes | None] = [CARD_NUMBERS[0], CLEAN[0]]
    assert not any(isinstance(r, Rejection) for r in _same(free, payloads))
    bounded = transaction_decoder.with_bounds(EventTimeBounds(max_age_s=None))
    _same(bounded, [*CARD_NUMBERS, *CLEAN])
