"""Acceptance (foundation): 1,000 malformed payloads through the real broker each yield
exactly one DeadLetter with the right reason, nothing crashes, and no dead letter keeps a
card number: a payload that held one is kept redacted, identified by its sha256."""

from __future__ import annotations

import hashlib
import time

import pytest
from confluent_kafka import Consumer, Producer

from streams.dlq import encode_dead_letter
from streams.events import DeadLetter
from streams.intake import decode_batch
from streams.kafka import consumer_config, producer_config
from streams.pan import count_pans
from streams.producer import AckedProducer
from streams.serde import Decoder
from streams.topics import Topics
from tests.malformed import corpus_decoder, malformed_corpus

pytestmark = pytest.mark.integration


def _drain(consumer: Consumer, expected: int, timeout_s: float = 60.0) -> list:  # type: ignore[type-arg]
    out: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        out.extend(m for m in consumer.consume(500, 0.2) if m.error() is None)
    return out


def test_every_malformed_payload_becomes_one_dead_letter(
    kafka_bootstrap: str, topics: Topics
) -> None:
    corpus = malformed_corpus(1000)
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-bad"))
    for i, (payload, _) in enumerate(corpus):
        producer.produce(topics.transactions, payload, key=f"k{i}".encode())
    assert producer.flush(60) == 0

    intake = Consumer(
        consumer_config(kafka_bootstrap, group_id=f"{topics.prefix}intake", client_id="test-intake")
    )
    intake.subscribe([topics.transactions])
    messages = _drain(intake, len(corpus))
    assert len(messages) == len(corpus)

    batch = decode_batch(messages, corpus_decoder)
    assert batch.transactions == []
    dlq = AckedProducer(producer_config(kafka_bootstrap, client_id="test-dlq"))
    for letter in batch.dead_letters:
        value, key = encode_dead_letter(letter)
        dlq.produce(topics.dlq, value, key)
    dlq.wait_acked()
    intake.close()

    reader = Consumer(
        consumer_config(kafka_bootstrap, group_id=f"{topics.prefix}reader", client_id="test-reader")
    )
    reader.subscribe([topics.dlq])
    letters = [
        Decoder(DeadLetter, max_bytes=64 * 1024 * 1024, check_pan=False).decode(m.value())
        for m in _drain(reader, len(corpus))
    ]
    reader.close()

    assert all(isinstance(letter, DeadLetter) for letter in letters)
    by_position = {(d.partition, d.offset): d for d in letters}  # type: ignore[union-attr]
    assert len(by_position) == len(corpus) == len(letters)
    sent = {m.key().decode(): i for i, m in enumerate(messages)}
    for letter in letters:
        index = int(letter.key.decode()[1:])  # type: ignore[union-attr]
        payload, reason = corpus[index]
        assert letter.reason == reason, (index, letter.message)  # type: ignore[union-attr]
        assert letter.original_sha256 == hashlib.sha256(payload).hexdigest()  # type: ignore[union-attr]
        assert letter.original_bytes == len(payload)  # type: ignore[union-attr]
        if letter.redacted:  # type: ignore[union-attr]  # held a card number: never kept
            assert count_pans(letter.original) == 0  # type: ignore[union-attr]
        elif letter.truncated:  # type: ignore[union-attr]
            assert letter.original == payload[: len(letter.original)]  # type: ignore[union-attr]
        else:  # proven clean: kept byte for byte, so it can be fixed and replayed
            assert letter.original == payload  # type: ignore[union-attr]
        assert letter.source_topic == topics.transactions  # type: ignore[union-attr]
    assert len(sent) == len(corpus)
