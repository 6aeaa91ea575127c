"""A real scorer process fed 10,000 good transactions with 50 poison records interleaved:
it stays up, decides every good one once, dead-letters every poison one with its reason
(never keeping a card number), commits to the end, and serves the card features a run
without the poison serves."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from services.scorer.service import build_scorer
from streams.events import DeadLetter, Transaction
from streams.kafka import ensure_topics, producer_config
from streams.pan import count_pans
from streams.serde import Decoder, encode
from streams.topics import TRANSACTIONS, Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    committed_equals_end,
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
    wait_for_decisions,
)
from tests.processes import ServiceProcess

pytestmark = pytest.mark.e2e

GOOD_COUNT = 10_000
EVERY = GOOD_COUNT // 50


def poison(template: Transaction, i: int) -> tuple[bytes, str]:
    """The ``i``-th poison record and the reason it must be dead-lettered with."""
    base = json.loads(encode(template))
    base["transaction_id"] = f"poison-{i}"
    body = json.dumps(base).encode()
    kinds: list[tuple[bytes, str]] = [
        (body[:-1] + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "too_deep"),
        (
            json.dumps({**base, "event_time": "9999-12-31T23:59:59Z"}).encode(),
            "event_time_out_of_range",
        ),
        (body[:-1] + b', "memo": "\\u0034111111111111111"}', "pan_not_allowed"),
        (body[:-1] + b', "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}', "too_large"),
        (b"\xff\xfe" + body, "invalid_utf8"),
        (json.dumps({**base, "note": "card 5500 0000 0000 0004"}).encode(), "pan_not_allowed"),
        (body[:-1] + b', "amount": 9.99}', "duplicate_field"),
        (json.dumps({**base, "transaction_id": "p\n"}).encode(), "invalid_value"),
        (json.dumps({**base, "schema_version": 99}).encode(), "unsupported_version"),
        (b"[" * 100_000, "too_large"),
    ]
    return kinds[i % len(kinds)]


@pytest.fixture()
def reference_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def test_poison_records_cost_one_dead_letter_each(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    reference_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    good = small_world.as_live_events(GOOD_COUNT, rate=2_000.0)
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-poison"))
    expected: Counter[str] = Counter()
    for i, tx in enumerate(good):
        producer.produce(topics.transactions, encode(tx), key=tx.card_id)
        if i % EVERY == EVERY - 1:  # a poison record on the card's own partition
            payload, reason = poison(tx, i // EVERY)
            producer.produce(topics.transactions, payload, key=tx.card_id)
            expected[reason] += 1
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert sum(expected.values()) == 50

    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "poison")
    scorer = ServiceProcess(["serve", "scorer", "--metrics-port", "0"], env, tmp_path / "s.log")
    try:
        decisions = wait_for_decisions(kafka_bootstrap, topics.scored, GOOD_COUNT, timeout_s=240)
        time.sleep(2.0)  # the last batch settles (commit) a poll after its writes
        assert scorer.alive(), scorer.output()[-3000:]
        assert committed_equals_end(
            kafka_bootstrap, env["FRAUD_GROUP_ID"], topics.transactions, TRANSACTIONS.partitions
        )
    finally:
        assert scorer.terminate() == 0, scorer.output()[-3000:]
    assert scorer.output().count("stage=start") == 1  # never restarted

    counts = Counter(d.transaction_id for d in decisions)
    assert set(counts) == {t.transaction_id for t in good} and max(counts.values()) == 1

    decoder = Decoder(DeadLetter, max_bytes=64 * 1024 * 1024, check_pan=False)
    letters = [decoder.decode(m.value()) for m in read_all(kafka_bootstrap, topics.dlq)]
    assert all(isinstance(letter, DeadLetter) for letter in letters)
    assert Counter(letter.reason for letter in letters) == expected  # type: ignore[union-attr]
    for letter in letters:
        assert count_pans(letter.original) == 0  # type: ignore[union-attr]
        assert letter.original_sha256 and letter.original_bytes  # type: ignore[union-attr]

    # Reference: the same good transactions, no poison, through a scorer of their own.
    reference = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, reference)
    produce(kafka_bootstrap, reference.transactions, good)
    ref_env = scorer_env(
        kafka_bootstrap, redis_url, reference, reference_prefix, champion_state, "poison-ref"
    )
    build_scorer(scorer_settings(ref_env)).run(max_idle_s=4.0)
    expected_features = {
        d.transaction_id: d.features
        for d in decode_decisions(read_all(kafka_bootstrap, reference.scored))
    }
    assert {d.transaction_id: d.features for d in decisions} == expected_features
