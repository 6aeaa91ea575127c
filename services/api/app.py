"""The FastAPI application: ``/v1/score``, ``/v1/labels``, models, health, metrics.

Bodies are decoded with the same strict msgspec decoders as the stream (so the same
input is refused for the same reason), and scored by the same :class:`ScoringPipeline`.
Decisions are also written to ``transactions.scored`` so the audit log is complete
(:mod:`services.api.audit`: after the broker's acknowledgement or in the background).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from features.definitions import FEATURE_SET_ID
from models.registry import ModelRegistry
from services.api.audit import AuditLog
from services.api.auth import ApiKeys
from services.scorer.ledger import DecisionLedger
from services.scorer.pipeline import ScoringPipeline
from streams.errors import FraudError
from streams.events import Decision, Label, ReviewCase, Transaction
from streams.pan import find_pan
from streams.producer import AckedProducer
from streams.serde import classify_validation_error, encode
from streams.topics import Topics


@dataclass
class ApiContext:
    pipeline: ScoringPipeline
    ledger: DecisionLedger
    producer: AckedProducer
    audit: AuditLog
    topics: Topics
    registry: ModelRegistry
    keys: ApiKeys
    current_version: Callable[[], str]
    readiness: Callable[[], dict[str, bool]]
    max_request_bytes: int
    max_batch: int
    scoring: threading.Lock = field(default_factory=threading.Lock)
    """The feature store (its card cache) and the dedupe check serve one request at a time
    (scoring runs on the event loop's thread; the lock keeps any other caller out)."""


_score_decoder = msgspec.json.Decoder(Transaction | list[Transaction])
_label_decoder = msgspec.json.Decoder(Label | list[Label])


_REF = "#/components/schemas/{name}"


def _body_schema(kind: type) -> dict[str, Any]:
    """OpenAPI request body: one ``kind`` or a non-empty list of them (msgspec schema)."""
    (one,), _ = msgspec.json.schema_components([kind], ref_template=_REF)
    many = {"type": "array", "items": one, "minItems": 1}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [one, many]}}},
        },
    }


def _with_event_components(app: FastAPI) -> None:
    """Add the event schemas the request bodies refer to, to the generated OpenAPI spec."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            _, components = msgspec.json.schema_components([Transaction, Label], ref_template=_REF)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    return body


def _decode(decoder: msgspec.json.Decoder, body: bytes, max_batch: int) -> list[Any]:
    pan = find_pan(body)
    if pan is not None:
        raise _invalid("pan_not_allowed", pan)
    try:
        parsed = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(classify_validation_error(str(exc)), str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise _invalid("invalid_json", str(exc)) from exc
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise _invalid("invalid_value", "empty list")
    if len(items) > max_batch:
        raise _invalid("too_large", f"{len(items)} items, limit {max_batch}")
    return items


def _invalid(reason: str, message: str) -> HTTPException:
    field = message.rsplit("at `", 1)[-1].rstrip("`") if "at `" in message else None
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"reason": reason, "field": field, "message": message}],
    )


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.audit.start()
        try:
            yield
        finally:
            await run_in_threadpool(ctx.audit.close)

    app = FastAPI(
        lifespan=lifespan,
        title="fraud-stream scoring API",
        version="1",
        description="Synchronous scoring and labelling. Auth: `X-API-Key` header.",
    )

    @app.exception_handler(FraudError)
    async def _fraud_error(_: Request, exc: FraudError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.post(
        "/v1/score",
        openapi_extra=_body_schema(Transaction),
        responses={401: {}, 403: {}, 413: {}, 422: {}, 503: {}},
    )
    async def score(request: Request) -> Response:
        ctx.keys.require(request, "score")
        body = await _read_body(request, ctx.max_request_bytes)
        transactions: list[Transaction] = _decode(_score_decoder, body, ctx.max_batch)
        # On the event loop's thread, not in the thread pool: scoring is a few Redis round
        # trips and ~1-2 ms of numpy, and the hop to a worker thread and back (GIL
        # hand-offs) made the tail: p99 at 200 rps 14-23 ms through the pool, 6-9 ms here.
        decisions, logged, cases = _score(ctx, transactions)
        await ctx.audit.write(logged, cases)
        return Response(encode_list("decisions", decisions), media_type="application/json")

    @app.post(
        "/v1/labels",
        openapi_extra=_body_schema(Label),
        responses={401: {}, 403: {}, 413: {}, 422: {}, 503: {}},
        status_code=202,
    )
    async def labels(request: Request) -> Response:
        ctx.keys.require(request, "labels")
        body = await _read_body(request, ctx.max_request_bytes)
        items: list[Label] = _decode(_label_decoder, body, ctx.max_batch)
        await run_in_threadpool(_publish_labels, ctx, items)
        return JSONResponse({"accepted": len(items)}, status_code=status.HTTP_202_ACCEPTED)

    @app.get("/v1/models/current", responses={401: {}, 403: {}})
    def current_model(request: Request) -> dict[str, Any]:
        ctx.keys.require(request, "read")
        champion = ctx.registry.champion()
        if champion is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no champion")
        policy = champion.policy()
        return {
            "serving_version": ctx.current_version(),
            "champion_version": champion.version,
            "created_at": champion.created_at,
            "parent": champion.parent,
            "feature_set": FEATURE_SET_ID,
            "policy": {
                "review_threshold": policy.review_threshold,
                "decline_threshold": policy.decline_threshold,
                "review_rate": policy.review_rate,
            },
            "metrics": champion.metrics(),
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {}})
    def readyz() -> JSONResponse:
        checks = ctx.readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "checks": checks},
            status_code=200 if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _with_event_components(app)
    return app


def encode_list(name: str, items: list[Any]) -> bytes:
    return b'{"' + name.encode() + b'":' + msgspec.json.encode(items) + b"}"


def _score(
    ctx: ApiContext, transactions: list[Transaction]
) -> tuple[list[Decision], list[Decision], list[ReviewCase]]:
    """Every transaction's decision, and those the audit log must take: the ones not
    decided before and not being written by another request (with their review cases)."""
    produced_ms = [int(time.time() * 1000)] * len(transactions)
    ids = [t.transaction_id for t in transactions]
    with ctx.scoring:
        fresh = ctx.ledger.undecided(ids)
        scored = ctx.pipeline.score(transactions, produced_ms)
        fresh = ctx.audit.claim(ids, fresh)  # a retry already being written is not logged twice
    logged = [d for d, new in zip(scored.decisions, fresh, strict=True) if new]
    logged_ids = {d.transaction_id for d in logged}
    cases = [c for c in scored.review_cases if c.case_id in logged_ids]
    return scored.decisions, logged, cases


def _publish_labels(ctx: ApiContext, items: list[Label]) -> None:
    for label in items:
        ctx.producer.produce(ctx.topics.labels, encode(label), label.transaction_id)
    ctx.producer.wait_acked(10)
