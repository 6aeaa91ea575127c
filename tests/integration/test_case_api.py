"""``/v1/cases`` on the real app, broker and a SQLite case store: the queue, claims that
exclude each other, a verdict retried that emits one label on ``fraud.labels``."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from confluent_kafka import Consumer
from fastapi.testclient import TestClient

from services.api.app import ApiContext
from streams.events import Label
from streams.kafka import consumer_config
from streams.topics import Topics
from tests.cases.conftest import review_case
from tests.integration.api_fixtures import Keys

pytestmark = pytest.mark.integration


def _labels(bootstrap: str, topics: Topics, want: int) -> list[Label]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"labels-{uuid.uuid4().hex[:6]}", client_id="t")
    )
    consumer.subscribe([topics.labels])
    out: list[Label] = []
    try:
        for _ in range(100):
            out += [
                msgspec.json.decode(m.value(), type=Label)
                for m in consumer.consume(10, 0.2)
                if m.error() is None
            ]
            if len(out) >= want:
                break
        # anything more would arrive with it: read a little longer for a duplicate
        out += [
            msgspec.json.decode(m.value(), type=Label)
            for m in consumer.consume(10, 1.0)
            if m.error() is None
        ]
    finally:
        consumer.close()
    return out


def test_claim_verdict_and_one_label(
    client: TestClient, context: ApiContext, keys: Keys, kafka_bootstrap: str, topics: Topics
) -> None:
    assert context.cases is not None
    context.cases.store.ingest(
        [review_case(1, amount=80.0, score=0.9), review_case(2, card="C2", amount=20.0)]
    )
    queue = client.get("/v1/cases", headers=keys.ana).json()["cases"]
    assert [c["case_id"] for c in queue] == ["case0001", "case0002"]
    assert client.get("/v1/cases", headers=keys.score).status_code == 403

    assert client.post("/v1/cases/case0001/claim", headers=keys.ana).json()["state"] == "claimed"
    refused = client.post("/v1/cases/case0001/claim", headers=keys.bo)
    assert refused.status_code == 409
    assert "claimed by ana" in refused.json()["detail"]
    assert client.post("/v1/cases/nope/claim", headers=keys.bo).status_code == 404

    note = {"text": "cardholder quoted 4111 1111 1111 1111"}
    assert client.post("/v1/cases/case0001/note", headers=keys.ana, json=note).status_code == 200
    body = {"verdict": "fraud", "note": "confirmed by phone"}
    first = client.post("/v1/cases/case0001/verdict", headers=keys.ana, json=body)
    retry = client.post("/v1/cases/case0001/verdict", headers=keys.ana, json=body)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert (first.json()["state"], first.json()["replayed"], retry.json()["replayed"]) == (
        "resolved",
        False,
        True,
    )
    bad = client.post("/v1/cases/case0002/verdict", headers=keys.ana, json={"verdict": "maybe"})
    assert bad.status_code == 422

    page = client.get("/v1/cases/case0001", headers=keys.ana).json()
    assert page["notes"][0]["text"] == "cardholder quoted [card number removed]"
    assert [c["case_id"] for c in client.get("/v1/cases", headers=keys.bo).json()["cases"]] == [
        "case0002"
    ]
    stats = client.get("/v1/queue/stats", headers=keys.bo).json()
    assert stats["throughput"] == {"ana": {"fraud": 1}}

    labels = _labels(kafka_bootstrap, topics, want=1)
    assert [(x.transaction_id, x.label, x.analyst, x.source) for x in labels] == [
        ("tx0001", "fraud", "ana", "analyst")
    ]
    assert labels[0].note == "confirmed by phone"
