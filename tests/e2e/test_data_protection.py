"""No card number at rest, and erasure on request, on one deployment that saw hostile input.

The deployment (its own topics, Redis prefix and state folder) takes good transactions and
the bad-input corpus through the scorer, PAN-laden requests and label notes through the
API, an analyst's note through the review session, and joins labels into the training
store with the real feedback processor. Then:

* the sweep reads back everything the service wrote - every topic but the producers' own
  input topic, the training store's parquet and audit files, the state folder's files,
  the processes' logs, every Redis key and value under the prefix - and finds no
  Luhn-valid card number;
* one customer is erased with ``fraudctl erase``: no Redis key, training row, audit line
  or live changelog entry of theirs is left, and a second run removes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from confluent_kafka import Consumer
from fastapi.testclient import TestClient

from features.training_store import TrainingStore
from services.api.app import create_app
from services.api.keys import KeyFile
from services.api.main import build_context
from services.api.settings import ApiSettings
from services.review.session import ReviewSession
from services.scorer.service import build_scorer
from streams.events import ReviewCase, Transaction
from streams.kafka import admin_client, consumer_config, ensure_topics, producer_config
from streams.pan import count_pans
from streams.producer import AckedProducer
from streams.serde import encode
from streams.topics import Topics
from tests.integration.conftest import SmallWorld, private_state
from tests.integration.scorer_helpers import produce, read_all, scorer_env, scorer_settings
from tests.malformed import KINDS, malformed_corpus
from tests.processes import FRAUDCTL, ROOT, ServiceProcess

pytestmark = pytest.mark.e2e

PAN_NOTE = "customer read out 4111 1111 1111 1111 on the phone"


@dataclass
class Deployment:
    env: dict[str, str]
    topics: Topics
    redis_prefix: str
    state: Path
    logs: Path
    client: redis.Redis
    labelled: list[Transaction]


def _wait(check: object, timeout_s: float, what: str, log: ServiceProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout_s}s:\n{log.output()[-4000:]}")


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str,
    redis_url: str,
    champion_state: Path,
    small_world: SmallWorld,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("protect")
    state = private_state(champion_state, root / "state")
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, topics)
    prefix = f"test{uuid.uuid4().hex[:10]}"
    env = scorer_env(kafka_bootstrap, redis_url, topics, prefix, state, "protect")
    client = redis.Redis.from_url(redis_url)
    logs = root / "logs"
    logs.mkdir()

    # 1. the scorer: good traffic and the whole bad-input corpus
    good = small_world.as_live_events(1_000, rate=2_000.0)
    corpus = [p for p, _ in malformed_corpus(KINDS * 3)]
    produce(kafka_bootstrap, topics.transactions, good, extra=corpus)
    build_scorer(scorer_settings(env)).run(max_idle_s=4.0)

    # 2. the API: card numbers in requests, label notes, ids
    keys = KeyFile(state / "api-keys.json")
    analyst = {"X-API-Key": keys.create("ana", "score+labels")[0]}
    feed = {"X-API-Key": keys.create("chargebacks", "labels+chargeback")[0]}
    settings = ApiSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=topics.prefix,
        redis_prefix=prefix,
        feast_project=env["FRAUD_FEAST_PROJECT"],
        state_dir=state,
        event_time_max_age_s=0,
    )
    ctx, champion = build_context(settings)
    labelled = good[:200]
    with TestClient(create_app(ctx)) as api:
        tx = json.loads(encode(good[-1]))
        assert (
            api.post(
                "/v1/score", json={**tx, "memo": "4111111111111111"}, headers=analyst
            ).status_code
            == 422
        )
        assert (
            api.post(
                "/v1/score", json={**tx, "card_id": "x5500000000000004"}, headers=analyst
            ).status_code
            == 422
        )
        notes = [
            {
                "transaction_id": t.transaction_id,
                "label": "fraud" if i % 5 == 0 else "legit",
                "note": PAN_NOTE,
            }
            for i, t in enumerate(labelled[:150])
        ]
        assert api.post("/v1/labels", json=notes, headers=analyst).status_code == 202
        chargebacks = [
            {
                "transaction_id": t.transaction_id,
                "label": "fraud",
                "source": "chargeback",
                "note": f"ref {PAN_NOTE}",
            }
            for t in labelled[150:]
        ]
        assert api.post("/v1/labels", json=chargebacks, headers=feed).status_code == 202
        bad_id = {"transaction_id": "4111111111111111", "label": "fraud"}
        assert api.post("/v1/labels", json=bad_id, headers=analyst).status_code == 422
    champion.stop()

    # 3. an analyst's note in the review session (on a case of its own: 1,000 transactions
    # of the simulator's normal traffic may flag none)
    cases_out = AckedProducer(producer_config(kafka_bootstrap, client_id="cases"))
    case = ReviewCase(
        case_id=good[300].transaction_id,
        transaction=good[300],
        score=0.97,
        decision="review",
        model_version="v0001",
    )
    cases_out.produce(topics.review, encode(case), good[300].card_id)
    cases_out.wait_acked()
    review = ReviewSession(
        Consumer(
            consumer_config(kafka_bootstrap, group_id=f"{topics.prefix}review", client_id="rv")
        ),
        AckedProducer(producer_config(kafka_bootstrap, client_id="rv")),
        topics,
        analyst="bo",
        source="analyst",
    )
    deadline = time.monotonic() + 30
    cases = []
    while not cases and time.monotonic() < deadline:
        cases = review.next_cases(timeout_s=0.5)
    assert cases, "no case reached the review session"
    review.verdict(cases[0], "fraud", note=PAN_NOTE)
    labelled = [*labelled, good[300]]

    # 4. the feedback processor joins labels into the training store
    feedback_env = {**env, "FRAUD_TICK_S": "1", "FRAUD_LABEL_WAIT_S": "30"}
    feedback = ServiceProcess(["serve", "feedback"], feedback_env, logs / "feedback.log")
    store = TrainingStore(state / "training")
    try:
        _wait(lambda: len(store.read()) >= len(labelled), 180, "every label joined", feedback)
    finally:
        feedback.terminate()
    yield Deployment(env, topics, prefix, state, logs, client, labelled)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def _deployment_topics(bootstrap: str, topics: Topics) -> list[str]:
    names = admin_client(bootstrap).list_topics(timeout=10).topics
    return sorted(n for n in names if n.startswith(topics.prefix))


def _strings_in_parquet(path: Path) -> bytes:
    table = pq.read_table(path)
    text = [c.to_pylist() for c in table.columns if str(c.type) == "string"]
    return json.dumps(text).encode()


def test_no_card_number_at_rest(deployment: Deployment, kafka_bootstrap: str) -> None:
    d = deployment
    found: dict[str, int] = {}
    swept = 0
    inputs = {d.topics.transactions}  # what producers wrote; the service cannot edit it
    for topic in _deployment_topics(kafka_bootstrap, d.topics):
        records = read_all(kafka_bootstrap, topic, idle_s=1.0)
        if topic in inputs:
            assert sum(count_pans(m.value() or b"") for m in records) > 0  # the sweep sees them
            continue
        for m in records:
            swept += 1
            for part in (m.value(), m.key()):
                if part and count_pans(part):
                    found[topic] = found.get(topic, 0) + count_pans(part)
    for path in sorted(d.state.rglob("*")):
        if path.is_file() and path.suffix in (".parquet", ".jsonl", ".json", ".md", ".log"):
            swept += 1
            data = _strings_in_parquet(path) if path.suffix == ".parquet" else path.read_bytes()
            if count_pans(data):
                found[str(path)] = count_pans(data)
    for path in sorted(d.logs.iterdir()):
        if count_pans(path.read_bytes()):
            found[str(path)] = count_pans(path.read_bytes())
    for key in d.client.scan_iter(match=f"{d.redis_prefix}*", count=1000):
        swept += 1
        kind = d.client.type(key)
        values = [key]
        if kind == b"string":
            values.append(d.client.get(key) or b"")
        elif kind == b"hash":
            values += [b for pair in d.client.hgetall(key).items() for b in pair]
        for value in values:
            if count_pans(value):
                found[key.decode(errors="replace")] = count_pans(value)
    assert swept > 500
    assert found == {}


def test_erasure_of_one_customer(deployment: Deployment, kafka_bootstrap: str) -> None:
    d = deployment
    victim = d.labelled[0]
    customer, card = victim.customer_id, victim.card_id
    theirs = {t.transaction_id for t in d.labelled if t.card_id == card}

    def erase() -> dict[str, object]:
        out = subprocess.run(
            [*FRAUDCTL, "erase", "--customer", customer, "--card", card, "--json"],
            env={**os.environ, **d.env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = erase()
    removed = first["removed"]
    assert isinstance(removed, dict)
    assert removed["redis"]["card_keys"] == 1
    assert removed["training_store"]["rows"] >= len(theirs)
    assert first["remaining_redis_keys"] == 0

    ids = [customer.encode(), card.encode(), *(t.encode() for t in theirs)]
    for key in d.client.scan_iter(match=f"{d.redis_prefix}*", count=1000):
        assert not any(i in key for i in ids), key
        if d.client.type(key) == b"string":
            assert not any(i in (d.client.get(key) or b"") for i in ids), key
    training = d.state / "training"
    for path in training.rglob("*.parquet"):
        assert card not in pq.read_table(path, columns=["card_id"])["card_id"].to_pylist()
    for path in training.rglob("*.jsonl"):
        assert not any(t in path.read_text() for t in theirs)
    served, pending = (
        f"{d.topics.prefix}feedback.served-changelog",
        f"{d.topics.prefix}feedback.pending-changelog",
    )
    for topic in (served, pending):
        latest: dict[bytes, bytes | None] = {}
        for m in read_all(kafka_bootstrap, topic, idle_s=1.0):
            latest[m.key()] = m.value()
        live = [v for v in latest.values() if v is not None]
        assert not any(card.encode() in v for v in live), topic
        assert not any(latest.get(t.encode()) for t in theirs), topic

    again = erase()
    assert again["total_removed"] == 0
    audit = [
        json.loads(line) for line in (d.state / "erasure" / "audit.jsonl").read_text().splitlines()
    ]
    assert len(audit) == 2 and all(customer not in json.dumps(a) for a in audit)
    assert audit[0]["customer_sha256"] == audit[1]["customer_sha256"]
