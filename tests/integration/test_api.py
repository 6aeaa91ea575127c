"""REST API: every endpoint, auth failures and invalid bodies (real Redis + broker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.api.app import ApiContext, create_app
from services.api.keys import KeyFile
from streams.events import Label
from streams.serde import encode, label_decoder
from streams.topics import Topics
from tests.integration.api_fixtures import Keys
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import decode_decisions, read_all
from tests.malformed import GOOD

pytestmark = pytest.mark.integration


def _tx(world: SmallWorld, n: int) -> list[dict[str, object]]:
    return [json.loads(encode(t)) for t in world.as_events(n)]


@pytest.mark.parametrize("context", ["acked", "async"], indirect=True)
def test_score_one_and_many(
    client: TestClient, small_world: SmallWorld, kafka_bootstrap: str, topics: Topics, keys: Keys
) -> None:
    score_key = keys.score
    txs = _tx(small_world, 21)
    one = client.post("/v1/score", json=txs[0], headers=score_key)
    assert one.status_code == 200, one.text
    (decision,) = one.json()["decisions"]
    assert decision["transaction_id"] == txs[0]["transaction_id"]
    assert decision["decision"] in {"approve", "review", "decline"}
    assert 0.0 <= decision["score"] <= 1.0

    many = client.post("/v1/score", json=txs[1:], headers=score_key)
    assert many.status_code == 200
    assert [d["transaction_id"] for d in many.json()["decisions"]] == [
        t["transaction_id"] for t in txs[1:]
    ]
    logged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert sorted(d.transaction_id for d in logged) == sorted(t["transaction_id"] for t in txs)

    again = client.post(
        "/v1/score", json=txs[0], headers=score_key
    )  # a retry: answered, not re-logged
    assert again.status_code == 200
    relogged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert len(relogged) == len(txs)
    assert {d.submitted_by for d in relogged} == {"checkout-service"}


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), ("nope", 401), ("malformed", 401), ("labels", 403), ("ops", 403)],
)
def test_score_requires_a_key_with_the_score_scope(
    client: TestClient, keys: Keys, role: str | None, status: int
) -> None:
    headers = {
        None: {},
        "nope": {"X-API-Key": "fk_0123456789abcdef_not-the-secret"},
        "malformed": {"X-API-Key": "not a key at all"},
        "labels": keys.labels,
        "ops": keys.ops,
    }[role]
    assert client.post("/v1/score", json=GOOD, headers=headers).status_code == status


def test_bearer_token_works_like_the_header(client: TestClient, keys: Keys) -> None:
    bearer = {"Authorization": f"Bearer {keys.ops['X-API-Key']}"}
    assert client.get("/metrics", headers=bearer).status_code == 200


def test_a_key_over_its_rate_gets_429_with_retry_after(client: TestClient, keys: Keys) -> None:
    answers = [client.get("/v1/models/current", headers=keys.throttled) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # 1/s, a burst of 2 s
    assert answers[2].headers["Retry-After"] == "1"
    assert client.get("/v1/models/current", headers=keys.score).status_code == 200  # per key


def test_a_revoked_key_is_refused_within_a_second(client: TestClient, keys: Keys) -> None:
    import time

    assert client.get("/v1/models/current", headers=keys.score).status_code == 200
    key_id = keys.score["X-API-Key"].split("_")[1]
    assert KeyFile(keys.path).revoke(key_id)
    time.sleep(1.1)
    assert client.get("/v1/models/current", headers=keys.score).status_code == 401


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({**GOOD, "amount": -5}, "out_of_range", "$.amount"),
        ({**GOOD, "amount": "5"}, "wrong_type", "$.amount"),
        ({k: v for k, v in GOOD.items() if k != "card_id"}, "missing_field", None),
        ({**GOOD, "pan": "4111111111111111"}, "pan_not_allowed", None),
        ({**GOOD, "channel": "carrier-pigeon"}, "invalid_value", "$.channel"),
        ({**GOOD, "memo": "x4111111111111111"}, "pan_not_allowed", None),
        ({**GOOD, "transaction_id": "t1\n"}, "invalid_value", "$.transaction_id"),
        ({**GOOD, "event_time": "9999-12-31T00:00:00Z"}, "event_time_out_of_range", None),
        (
            {**GOOD, "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
            "too_deep",
            None,
        ),
    ],
)
def test_invalid_bodies_are_422_with_field_and_reason(
    client: TestClient, keys: Keys, body: dict[str, object], reason: str, field: str | None
) -> None:
    response = client.post("/v1/score", json=body, headers=keys.score)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["reason"] == reason
    assert detail["field"] == field


def test_truncated_json_oversized_body_and_too_many_items(client: TestClient, keys: Keys) -> None:
    score_key = keys.score
    truncated = client.post("/v1/score", content=b'{"transaction_id": "x', headers=score_key)
    assert truncated.status_code == 422
    assert truncated.json()["detail"][0]["reason"] == "invalid_json"
    big = client.post("/v1/score", content=b"[" + b" " * 70_000 + b"]", headers=score_key)
    assert big.status_code == 413
    many = client.post("/v1/score", json=[GOOD] * 51, headers=score_key)
    assert many.status_code == 422
    assert many.json()["detail"][0]["reason"] == "too_large"
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = client.post("/v1/score", content=deep[:60_000], headers=score_key)
    assert nested.status_code == 422
    assert nested.json()["detail"][0]["reason"] == "too_deep"
    mixed = client.post("/v1/score", json=[GOOD, {**GOOD, "amount": -1}], headers=score_key)
    assert mixed.status_code == 422
    (refused,) = mixed.json()["detail"]
    assert (refused["item"], refused["reason"], refused["field"]) == (
        1,
        "out_of_range",
        "$[1].amount",
    )
    duplicate = client.post("/v1/score", content=b'{"amount": 1, "amount": 2}', headers=score_key)
    assert duplicate.json()["detail"][0]["reason"] == "duplicate_field"


def test_labels_carry_the_callers_identity_and_the_servers_time(
    client: TestClient, keys: Keys, kafka_bootstrap: str, topics: Topics
) -> None:
    before = datetime.now(UTC)
    body = {"transaction_id": "tx-1", "label": "fraud", "note": "card 4111 1111 1111 1111"}
    response = client.post("/v1/labels", json=body, headers=keys.labels)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    chargeback = {"transaction_id": "tx-2", "label": "fraud", "source": "chargeback"}
    assert client.post("/v1/labels", json=chargeback, headers=keys.chargeback).status_code == 202
    (first, second) = sorted(
        (
            label_decoder.decode(m.value())
            for m in read_all(kafka_bootstrap, topics.labels, idle_s=1.5)
        ),
        key=lambda label: label.transaction_id,  # type: ignore[union-attr]
    )
    assert isinstance(first, Label) and isinstance(second, Label)
    assert (first.analyst, first.source, first.label) == ("ana", "analyst", "fraud")
    assert before <= first.labelled_at <= datetime.now(UTC)
    assert first.note == "card [card number removed]"
    assert (second.analyst, second.source) == ("chargeback-feed", "chargeback")


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [
        ("labels", {"transaction_id": "t", "label": "fraud", "analyst": "boss"}, 422),
        ("labels", {"transaction_id": "t", "label": "fraud", "labelled_at": "9999-01-01"}, 422),
        ("labels", {"transaction_id": "t", "label": "legit", "source": "chargeback"}, 403),
        ("labels", {"transaction_id": "t", "label": "legit", "source": "oracle"}, 422),
        ("score", {"transaction_id": "t", "label": "legit"}, 403),
    ],
)
def test_label_authority_is_not_the_bodys_to_claim(
    client: TestClient, keys: Keys, role: str, body: dict[str, str], status: int
) -> None:
    headers = {"labels": keys.labels, "score": keys.score}[role]
    assert client.post("/v1/labels", json=body, headers=headers).status_code == status


def test_model_health_readiness_and_metrics(client: TestClient, keys: Keys) -> None:
    model = client.get("/v1/models/current", headers=keys.score)
    assert model.status_code == 200
    body = model.json()
    assert body["serving_version"] == body["champion_version"] == "v0001"
    assert 0 < body["policy"]["review_threshold"] <= body["policy"]["decline_threshold"] <= 1
    # what the thresholds were fitted on: the training run's validation window here
    assert body["policy"]["basis"]["validation_rows"] > 0
    assert body["policy"]["basis"]["decline_precision_target"] == 0.9
    assert client.get("/v1/models/current").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"redis": True, "model": True, "broker": True}}
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=keys.score).status_code == 403
    metrics = client.get("/metrics", headers=keys.ops)
    assert metrics.status_code == 200
    assert "fraud_decisions_total" in metrics.text
    assert "fraud_api_audit_records_total" in metrics.text


def test_openapi_describes_the_request_bodies(client: TestClient, keys: Keys) -> None:
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 401
    assert client.get("/docs", headers=keys.ops).status_code == 200
    spec = client.get("/openapi.json", headers=keys.ops).json()
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Transaction"}
    assert "Transaction" in spec["components"]["schemas"]
    assert "LabelSubmission" in spec["components"]["schemas"]
    assert set(spec["paths"]["/v1/score"]["post"]["responses"]) >= {"401", "403", "422", "429"}


def test_concurrent_requests_on_one_card_count_every_transaction(
    context: ApiContext, small_world: SmallWorld, kafka_bootstrap: str, topics: Topics, keys: Keys
) -> None:
    """Requests interleave on the event loop (one waits for its acknowledgement while the
    next is scored); the card's count must still see each one, and each is logged once."""
    import asyncio
    from datetime import timedelta

    import httpx
    import msgspec

    from features.definitions import FEATURE_INDEX

    template = small_world.as_events(1)[0]
    start = datetime.now(UTC) - timedelta(hours=2)
    txs = [
        msgspec.structs.replace(
            template,
            transaction_id=f"concurrent-{i}",
            event_time=start + timedelta(seconds=10 * i),
        )
        for i in range(48)
    ]
    probe = msgspec.structs.replace(
        template, transaction_id="concurrent-probe", event_time=start + timedelta(hours=1)
    )

    async def post_all() -> tuple[list[int], dict[str, object]]:
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:

            async def post(tx: object) -> httpx.Response:
                return await http.post("/v1/score", content=encode(tx), headers=keys.score)

            answers = await asyncio.gather(*(post(tx) for tx in txs))
            last = await post(probe)
        return [a.status_code for a in answers], last.json()["decisions"][0]

    statuses, decision = asyncio.run(post_all())
    assert statuses == [200] * len(txs)
    assert decision["features"][FEATURE_INDEX["card_tx_count_1d"]] == len(txs)
    assert not context.ledger.undecided([t.transaction_id for t in txs]).any()
    logged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert sorted(d.transaction_id for d in logged) == sorted(
        t.transaction_id for t in [*txs, probe]
    )
