"""The case ingester on the real broker: cases and decisions stored once, however often
the topic is read; bad records dead-lettered; offsets committed after the store."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer

from services.cases.ingester import CaseIngester
from services.cases.store import CaseStore
from streams.events import DeadLetter
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer
from streams.serde import encode
from streams.topics import Topics
from tests.cases.conftest import decision, review_case

pytestmark = pytest.mark.integration


def _ingester(bootstrap: str, topics: Topics, store: CaseStore, group: str) -> CaseIngester:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=group, client_id="test-cases", instance_id=f"{group}-0")
    )
    producer = AckedProducer(producer_config(bootstrap, client_id="test-cases"))
    return CaseIngester(consumer, producer, store, topics, batch_max=50)


def _drain(ingester: CaseIngester, want: int) -> None:
    seen = 0
    for _ in range(200):
        seen += ingester.step(wait_s=0.2)
        if seen >= want:
            return
    raise AssertionError(f"read {seen} records, expected {want}")


def test_ingest_replay_and_dead_letters(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    producer = AckedProducer(producer_config(kafka_bootstrap, client_id="test-feed"))
    for i in range(4):
        d = decision(i, amount=10.0 * (i + 1))
        producer.produce(topics.scored, encode(d), d.card_id)
    for i in range(5):
        c = review_case(100 + i, amount=300.0)
        producer.produce(topics.review, encode(c), c.transaction.card_id)
    producer.produce(topics.review, b'{"case_id": "broken"', b"C1")
    producer.wait_acked()

    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    store.migrate()
    group = f"{topics.prefix}cases-{uuid.uuid4().hex[:6]}"
    first = _ingester(kafka_bootstrap, topics, store, group)
    _drain(first, 10)
    first.close()
    assert (first.counts.created, first.counts.decisions, first.counts.dead_letters) == (5, 4, 1)

    # the committed offsets hold: the same group reads nothing again
    again = _ingester(kafka_bootstrap, topics, store, group)
    assert sum(again.step(wait_s=0.3) for _ in range(5)) == 0
    again.close()

    # a replay of the whole topic (a new group) creates nothing twice
    replay = _ingester(kafka_bootstrap, topics, store, group + "-replay")
    _drain(replay, 10)
    replay.close()
    assert (replay.counts.created, replay.counts.duplicates) == (0, 5)
    assert len(store.queue()) == 5
    page = store.case("case0100")
    assert page is not None
    assert page["reasons"][0]["typical"] == 25.0  # median of 10, 20, 30, 40
    assert len(page["card_history"]) == 4

    dlq = Consumer(consumer_config(kafka_bootstrap, group_id=f"{group}-dlq", client_id="test-dlq"))
    dlq.subscribe([topics.dlq])
    letters = []
    for _ in range(50):
        letters += [m for m in dlq.consume(10, 0.2) if m.error() is None]
        if len(letters) >= 2:
            break
    dlq.close()
    # one per reading of the record (the first group's and the replay's), the same source
    decoded = [msgspec.json.decode(m.value(), type=DeadLetter) for m in letters]
    assert [(d.source_topic, d.offset, d.reason) for d in decoded] == [
        (topics.review, decoded[0].offset, "invalid_json")
    ] * 2
    assert decoded[0].original == b'{"case_id": "broken"'
    store.close()
