"""The FastAPI application: ``/v1/score``, ``/v1/labels``, models, health, metrics.

Bodies are decoded item by item with the same strict decoder as the stream (so the same
input is refused for the same reason), and scored by the same :class:`ScoringPipeline`.
Decisions are also written to ``transactions.scored`` so the audit log is complete
(:mod:`services.api.audit`: after the broker's acknowledgement or in the background).

Who may do what is the caller's key (:mod:`services.api.auth`): its identity, not the
body, names the analyst of a label and the submitter of a decision, and the server's clock
dates a label.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from features.definitions import FEATURE_SET_ID
from models.registry_open import Registry
from services.api.audit import AuditLog
from services.api.auth import ApiKeys
from services.api.cases import case_router
from services.api.console import STATIC as CONSOLE_STATIC
from services.api.console import ConsoleContext, console_router
from services.api.console_login import LoginSigner
from services.api.contracts import (
    CaseNoteSubmission,
    CaseVerdict,
    ErasureRequest,
    LabelSubmission,
)
from services.api.keys import Principal
from services.api.metrics import RequestMetrics
from services.cases.desk import CaseDesk
from services.scorer.ledger import DecisionLedger
from services.scorer.pipeline import ScoringPipeline
from streams.errors import FraudError
from streams.events import Decision, Label, ReviewCase, Transaction
from streams.jsonscan import MAX_DEPTH, nesting_depth
from streams.pan import redact_text
from streams.producer import AckedProducer
from streams.serde import Decoder, Rejection, encode
from streams.topics import Topics


@dataclass
class ApiContext:
    pipeline: ScoringPipeline
    ledger: DecisionLedger
    producer: AckedProducer
    audit: AuditLog
    topics: Topics
    registry: Registry
    keys: ApiKeys
    current_version: Callable[[], str]
    readiness: Callable[[], dict[str, bool]]
    max_request_bytes: int
    max_batch: int
    transaction_decoder: Decoder[Transaction]
    label_decoder: Decoder[LabelSubmission]
    metrics_public: bool = False
    docs_public: bool = False
    erase: Callable[[ErasureRequest, Principal], dict[str, Any]] | None = None
    """Runs one erasure (``POST /v1/erasures``); None: the endpoint answers 503."""
    cases: CaseDesk | None = None
    """The case store behind ``/v1/cases`` and the console; None: they answer 503."""
    console: LoginSigner | None = None
    """Signs the review console's login cookies; None: the console is off."""
    secure_cookies: bool = False
    """Console cookies only over HTTPS (the API serves TLS)."""
    scoring: threading.Lock = field(default_factory=threading.Lock)
    """The feature store (its card cache) and the dedupe check serve one request at a time
    (scoring runs on the event loop's thread; the lock keeps any other caller out)."""


_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_erasure_decoder = Decoder(ErasureRequest)


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


def _one_body_schema(kind: type) -> dict[str, Any]:
    """OpenAPI request body: exactly one ``kind``."""
    (one,), _ = msgspec.json.schema_components([kind], ref_template=_REF)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": one}}}}


def _with_event_components(app: FastAPI) -> None:
    """Add the event schemas the request bodies refer to, to the generated OpenAPI spec."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            _, components = msgspec.json.schema_components(
                [Transaction, LabelSubmission, ErasureRequest, CaseVerdict, CaseNoteSubmission],
                ref_template=_REF,
            )
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


def _decode(decoder: Decoder[Any], body: bytes, max_batch: int) -> list[Any]:
    """One item or a list of them, each through the stream's decoder; 422 names every
    refused item (``$[i]`` in a list) with its reason."""
    if body.lstrip()[:1] != b"[":
        one = decoder.decode(body)
        if isinstance(one, Rejection):
            raise _invalid(one.reason, one.message)
        return [one]
    depth = nesting_depth(body)
    if depth > MAX_DEPTH + 1:  # the list itself is one level
        raise _invalid("too_deep", f"nested {depth} deep, limit {MAX_DEPTH + 1}")
    try:
        raws = _items_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise _invalid("invalid_json", str(exc)[:200]) from exc
    if not raws:
        raise _invalid("invalid_value", "empty list")
    if len(raws) > max_batch:
        raise _invalid("too_large", f"{len(raws)} items, limit {max_batch}")
    window = decoder.window()
    items, errors = [], []
    for i, raw in enumerate(raws):
        item = decoder.decode(bytes(raw), window)
        if isinstance(item, Rejection):
            errors.append(_error(item.reason, item.message.replace("`$", f"`$[{i}]"), i))
        else:
            items.append(item)
    if errors:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, errors[:100])
    return items


def _error(reason: str, message: str, item: int | None = None) -> dict[str, Any]:
    field = message.rsplit("at `", 1)[-1].rstrip("`") if "at `" in message else None
    out: dict[str, Any] = {"reason": reason, "field": field, "message": message}
    if item is not None:
        out["item"] = item
    return out


def _invalid(reason: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [_error(reason, message)])


def _problem(description: str, detail: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"detail": detail}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TEXT = {"type": "string"}
_REFUSED = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "reason": {"type": "string"},
            "field": {"type": ["string", "null"]},
            "message": {"type": "string"},
            "item": {"type": "integer"},
        },
        "required": ["reason", "message"],
    },
}
_AUTH: dict[int | str, dict[str, Any]] = {
    401: _problem("no valid API key", _TEXT),
    403: _problem("the key lacks the scope this needs", _TEXT),
    429: _problem("over the key's rate limit; see Retry-After", _TEXT),
}
_BODY: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    413: _problem("body over the size limit", _TEXT),
    422: _problem("refused input: one entry per refused item, with its DLQ reason", _REFUSED),
    503: _problem("Redis, the broker or the model is unavailable", _TEXT),
}


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.audit.start()
        if ctx.cases is not None:
            ctx.cases.start()
        try:
            yield
        finally:
            await run_in_threadpool(ctx.audit.close)
            if ctx.cases is not None:
                await run_in_threadpool(ctx.cases.close)

    app = FastAPI(
        lifespan=lifespan,
        title="fraud-stream scoring API",
        version="1",
        description="Synchronous scoring and labelling. Auth: an API key in the `X-API-Key` "
        "header (or `Authorization: Bearer`), created with `fraudctl keys create`.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RequestMetrics)

    @app.exception_handler(FraudError)
    async def _fraud_error(_: Request, exc: FraudError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.post("/v1/score", openapi_extra=_body_schema(Transaction), responses=_BODY)
    async def score(request: Request) -> Response:
        principal = ctx.keys.require(request, "score")
        body = await _read_body(request, ctx.max_request_bytes)
        transactions: list[Transaction] = _decode(ctx.transaction_decoder, body, ctx.max_batch)
        # On the event loop's thread, not in the thread pool: scoring is a few Redis round
        # trips and ~1-2 ms of numpy, and the hop to a worker thread and back (GIL
        # hand-offs) made the tail: p99 at 200 rps 14-23 ms through the pool, 6-9 ms here.
        decisions, logged, cases = _score(ctx, transactions, principal)
        await ctx.audit.write(logged, cases)
        return Response(encode_list("decisions", decisions), media_type="application/json")

    @app.post(
        "/v1/labels",
        openapi_extra=_body_schema(LabelSubmission),
        responses=_BODY,
        status_code=202,
    )
    async def labels(request: Request) -> Response:
        principal = ctx.keys.require(request, "labels")
        body = await _read_body(request, ctx.max_request_bytes)
        items: list[LabelSubmission] = _decode(ctx.label_decoder, body, ctx.max_batch)
        if any(i.source == "chargeback" for i in items) and "chargeback" not in principal.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "chargebacks need the 'chargeback' scope"
            )
        stamped = attributed_labels(items, principal, datetime.now(UTC))
        await run_in_threadpool(_publish_labels, ctx, stamped)
        return JSONResponse({"accepted": len(items)}, status_code=status.HTTP_202_ACCEPTED)

    @app.post("/v1/erasures", openapi_extra=_one_body_schema(ErasureRequest), responses=_BODY)
    async def erasures(request: Request) -> JSONResponse:
        principal = ctx.keys.require(request, "admin")
        body = await _read_body(request, ctx.max_request_bytes)
        wanted = _erasure_decoder.decode(body)
        if isinstance(wanted, Rejection):
            raise _invalid(wanted.reason, wanted.message)
        if not wanted.card_ids and not wanted.discover:
            raise _invalid("missing_field", "give card_ids, or discover: true")
        if ctx.erase is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "erasure is not configured")
        report = await run_in_threadpool(ctx.erase, wanted, principal)
        return JSONResponse(report)

    app.include_router(
        case_router(
            lambda: ctx.cases,
            lambda request, scope: ctx.keys.require(request, scope),
            lambda request: _read_body(request, ctx.max_request_bytes),
            _BODY,
            _one_body_schema,
        )
    )

    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    app.include_router(
        console_router(
            ConsoleContext(
                desk=lambda: ctx.cases,
                keys=lambda: ctx.keys,
                signer=lambda: ctx.console,
                secure_cookie=lambda: ctx.secure_cookies,
            )
        )
    )

    @app.get("/v1/models/current", responses=_AUTH)
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
                "basis": policy.basis,
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

    @app.get(
        "/metrics",
        responses={
            200: {"description": "Prometheus exposition", "content": {CONTENT_TYPE_LATEST: {}}},
            **_AUTH,
        },
    )
    def prometheus_metrics(request: Request) -> Response:
        if not ctx.metrics_public:
            ctx.keys.require(request, "metrics")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_spec(request: Request) -> JSONResponse:
        if not ctx.docs_public:
            ctx.keys.require(request, "docs")
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        if not ctx.docs_public:
            ctx.keys.require(request, "docs")
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    _with_event_components(app)
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI spec, without a running deployment (the routes' context is only
    used when a request arrives)."""
    return create_app(cast(ApiContext, None)).openapi()


def attributed_labels(
    items: list[LabelSubmission], principal: Principal, now: datetime
) -> list[Label]:
    """The labels as the caller may give them: the key's identity is the analyst, the
    server's clock the time, and the note is redacted of card numbers before it is
    written anywhere."""
    return [
        Label(
            transaction_id=item.transaction_id,
            label=item.label,
            analyst=principal.name,
            labelled_at=now,
            source=item.source,
            note=redact_text(item.note) if item.note else None,
        )
        for item in items
    ]


def encode_list(name: str, items: list[Any]) -> bytes:
    return b'{"' + name.encode() + b'":' + msgspec.json.encode(items) + b"}"


def _score(
    ctx: ApiContext, transactions: list[Transaction], principal: Principal
) -> tuple[list[Decision], list[Decision], list[ReviewCase]]:
    """Every transaction's decision, and those the audit log must take: the ones not
    decided before and not being written by another request (with their review cases)."""
    produced_ms = [int(time.time() * 1000)] * len(transactions)
    ids = [t.transaction_id for t in transactions]
    with ctx.scoring:
        fresh = ctx.ledger.undecided(ids)
        scored = ctx.pipeline.score(transactions, produced_ms, submitted_by=principal.name)
        fresh = ctx.audit.claim(ids, fresh)  # a retry already being written is not logged twice
    logged = [d for d, new in zip(scored.decisions, fresh, strict=True) if new]
    logged_ids = {d.transaction_id for d in logged}
    cases = [c for c in scored.review_cases if c.case_id in logged_ids]
    return scored.decisions, logged, cases


def _publish_labels(ctx: ApiContext, items: list[Label]) -> None:
    for label in items:
        ctx.producer.produce(ctx.topics.labels, encode(label), label.transaction_id)
    ctx.producer.wait_acked(10)
