"""The API under test: a key per role in a key file of its own, and the app wired to the
real Redis and broker (import the fixtures into a test module to use them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import ApiContext, create_app
from services.api.keys import SCOPES, KeyFile
from services.api.main import build_context
from services.api.settings import ApiSettings
from streams.topics import Topics

__all__ = ["Keys", "client", "context", "keys"]


@dataclass(frozen=True)
class Keys:
    """Headers of the test's API keys, one per role."""

    score: dict[str, str]
    labels: dict[str, str]
    chargeback: dict[str, str]
    ops: dict[str, str]
    throttled: dict[str, str]
    everything: dict[str, str]
    """Every scope, no rate limit (the schema fuzzer's key)."""
    ana: dict[str, str]
    bo: dict[str, str]
    """Two analysts of the review console (scope review)."""
    path: Path


@pytest.fixture()
def keys(tmp_path: Path) -> Keys:
    key_file = KeyFile(tmp_path / "api-keys.json")

    def header(name: str, scopes: str, rate: float | None = None) -> dict[str, str]:
        return {"X-API-Key": key_file.create(name, scopes, rate)[0]}

    return Keys(
        score=header("checkout-service", "score+read"),
        labels=header("ana", "labels"),
        chargeback=header("chargeback-feed", "labels+chargeback"),
        ops=header("ops", "metrics+docs"),
        throttled=header("batch-job", "read", rate=1.0),
        everything=header("fuzzer", "+".join(SCOPES), rate=0.0),
        ana=header("ana", "review", rate=0.0),
        bo=header("bo", "review", rate=0.0),
        path=key_file.path,
    )


@pytest.fixture()
def context(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    keys: Keys,
    tmp_path: Path,
) -> Iterator[ApiContext]:
    settings = ApiSettings(
        audit_delivery=getattr(request, "param", "acked"),
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=topics.prefix,
        redis_prefix=redis_prefix,
        feast_project=f"fraud_{redis_prefix}",
        state_dir=champion_state,
        api_keys_file=keys.path,
        max_request_bytes=64 * 1024,
        max_batch=50,
        event_time_max_age_s=0,  # the small world's history is dated 2026-01
        cases_db_url=f"sqlite:///{tmp_path / 'cases.db'}",
        console_secret_file=tmp_path / "console-secret",
    )
    ctx, champion = build_context(settings)
    yield ctx
    ctx.audit.close()  # the app's lifespan closed it already, unless a test used ctx directly
    if ctx.cases is not None:
        ctx.cases.close()
    champion.stop()


@pytest.fixture()
def client(context: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_app(context)) as test_client:
        yield test_client
