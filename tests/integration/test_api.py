"""REST API: every endpoint, auth failures and invalid bodies (real Redis + broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import ApiContext, create_app
from services.api.main import build_context
from services.api.settings import ApiSettings
from streams.events import Label
from streams.serde import encode, label_decoder
from streams.topics import Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import decode_decisions, read_all
from tests.malformed import GOOD

pytestmark = pytest.mark.integration

SCORE = {"X-API-Key": "scorer-key"}
LABELS = {"X-API-Key": "analyst-key"}


@pytest.fixture()
def context(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
) -> Iterator[ApiContext]:
    settings = ApiSettings(
        audit_delivery=getattr(request, "param", "acked"),
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=topics.prefix,
        redis_prefix=redis_prefix,
        feast_project=f"fraud_{redis_prefix}",
        state_dir=champion_state,
        api_keys="scorer-key:score+read,analyst-key:labels",
        max_request_bytes=64 * 1024,
        max_batch=50,
    )
    ctx, champion = build_context(settings)
    yield ctx
    ctx.audit.close()  # the app's lifespan closed it already, unless a test used ctx directly
    champion.stop()


@pytest.fixture()
def client(context: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_app(context)) as test_client:
        yield test_client


def _tx(world: SmallWorld, n: int) -> list[dict[str, object]]:
    return [json.loads(encode(t)) for t in world.as_events(n)]


@pytest.mark.parametrize("context", ["acked", "async"], indirect=True)
def test_score_one_and_many(
    client: TestClient, small_world: SmallWorld, kafka_bootstrap: str, topics: Topics
) -> None:
    txs = _tx(small_world, 21)
    one = client.post("/v1/score", json=txs[0], headers=SCORE)
    assert one.status_code == 200, one.text
    (decision,) = one.json()["decisions"]
    assert decision["transaction_id"] == txs[0]["transaction_id"]
    assert decision["decision"] in {"approve", "review", "decline"}
    assert 0.0 <= decision["score"] <= 1.0

    many = client.post("/v1/score", json=txs[1:], headers=SCORE)
    assert many.status_code == 200
    assert [d["transaction_id"] for d in many.json()["decisions"]] == [
        t["transaction_id"] for t in txs[1:]
    ]
    logged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert sorted(d.transaction_id for d in logged) == sorted(t["transaction_id"] for t in txs)

    again = client.post("/v1/score", json=txs[0], headers=SCORE)  # a retry: answered, not re-logged
    assert again.status_code == 200
    relogged = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
    assert len(relogged) == len(txs)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "nope"}, 401), (LABELS, 403)],
)
def test_score_requires_a_key_with_the_score_scope(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    assert client.post("/v1/score", json=GOOD, headers=headers).status_code == status


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({**GOOD, "amount": -5}, "out_of_range", "$.amount"),
        ({**GOOD, "amount": "5"}, "wrong_type", "$.amount"),
        ({k: v for k, v in GOOD.items() if k != "card_id"}, "missing_field", None),
        ({**GOOD, "pan": "4111111111111111"}, "pan_not_allowed", None),
        ({**GOOD, "channel": "carrier-pigeon"}, "invalid_value", "$.channel"),
    ],
)
def test_invalid_bodies_are_422_with_field_and_reason(
    client: TestClient, body: dict[str, object], reason: str, field: str | None
) -> None:
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["reason"] == reason
    assert detail["field"] == field


def test_truncated_json_oversized_body_and_too_many_items(client: TestClient) -> None:
    truncated = client.post("/v1/score", content=b'{"transaction_id": "x', headers=SCORE)
    assert truncated.status_code == 422
    assert truncated.json()["detail"][0]["reason"] == "invalid_json"
    big = client.post("/v1/score", content=b"[" + b" " * 70_000 + b"]", headers=SCORE)
    assert big.status_code == 413
    many = client.post("/v1/score", json=[GOOD] * 51, headers=SCORE)
    assert many.status_code == 422
    assert many.json()["detail"][0]["reason"] == "too_large"


def test_labels_are_published(client: TestClient, kafka_bootstrap: str, topics: Topics) -> None:
    label = Label(
        transaction_id="tx-1",
        label="fraud",
        analyst="ana",
        labelled_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    response = client.post("/v1/labels", content=encode(label), headers=LABELS)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    assert client.post("/v1/labels", content=encode(label), headers=SCORE).status_code == 403
    (message,) = read_all(kafka_bootstrap, topics.labels, idle_s=1.5)
    assert label_decoder.decode(message.value()) == label


def test_model_health_readiness_and_metrics(client: TestClient, champion_state: Path) -> None:
    model = client.get("/v1/models/current", headers=SCORE)
    assert model.status_code == 200
    body = model.json()
    assert body["serving_version"] == body["champion_version"] == "v0001"
    assert 0 < body["policy"]["review_threshold"] <= body["policy"]["decline_threshold"] <= 1
    assert client.get("/v1/models/current").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"redis": True, "model": True, "broker": True}}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "fraud_decisions_total" in metrics.text
    assert "fraud_api_audit_records_total" in metrics.text


def test_openapi_describes_the_request_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Transaction"}
    assert "Transaction" in spec["components"]["schemas"]
    assert "Label" in spec["components"]["schemas"]


def test_concurrent_requests_on_one_card_count_every_transaction(
    context: ApiContext, small_world: SmallWorld, kafka_bootstrap: str, topics: Topics
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
                return await http.post("/v1/score", content=encode(tx), headers=SCORE)

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
