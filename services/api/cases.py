"""``/v1/cases``: the review queue over REST (scope ``review``).

    GET  /v1/cases                   the queue, by priority; filters as query parameters
    GET  /v1/cases/{id}              one case with reasons, notes, history, linked cases
    POST /v1/cases/{id}/claim        take or renew the lease (409 while another holds it)
    POST /v1/cases/{id}/release      give it back
    POST /v1/cases/{id}/verdict      fraud | legit | escalate | needs_info
    POST /v1/cases/{id}/note         a note (card numbers redacted)
    GET  /v1/queue/stats             the lead's numbers: depth, oldest case, throughput

The analyst of every action is the key's identity. The console (:mod:`services.api.console`)
calls the same functions with the identity of its session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from services.api.contracts import CaseNoteSubmission, CaseVerdict
from services.api.keys import Principal
from services.cases.desk import CaseDesk
from services.cases.errors import CaseConflict, CaseNotFound
from services.cases.models import CaseState
from services.cases.store import OPEN_STATES, QueueFilter
from services.cases.workflow import ActionResult
from streams.serde import Decoder, Rejection

CaseAction = Literal["claim", "release", "verdict", "note"]
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_verdict_decoder = Decoder(CaseVerdict, free_text=("note",))
_note_decoder = Decoder(CaseNoteSubmission, free_text=("text",))


def act(
    desk: CaseDesk, case_id: str, action: CaseAction, principal: Principal, body: Any = None
) -> ActionResult:
    """One workflow action as ``principal``; CaseNotFound / CaseConflict propagate."""
    flow = desk.workflow
    if action == "claim":
        return flow.claim(case_id, principal.name)
    if action == "release":
        return flow.release(case_id, principal.name)
    if action == "note":
        return flow.note(case_id, principal.name, body.text)
    result = flow.verdict(case_id, principal.name, body.verdict, body.note)
    if desk.relay is not None and result.state == "resolved" and not result.replayed:
        desk.relay.wake.set()
    return result


def case_router(
    desk: Callable[[], CaseDesk | None],
    require: Callable[[Request, str], Principal],
    read_body: Callable[[Request], Any],
    responses: dict[int | str, dict[str, Any]],
    body_schema: Callable[[type], dict[str, Any]],
) -> APIRouter:
    router = APIRouter()
    text = {"type": "string"}

    def problem(description: str) -> dict[str, Any]:
        schema = {"type": "object", "properties": {"detail": text}, "required": ["detail"]}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    Responses = dict[int | str, dict[str, Any]]
    auth: Responses = {k: v for k, v in responses.items() if k in (401, 403, 429)}
    found: Responses = {
        **auth,
        404: problem("no such case"),
        503: problem("the case store is not configured or unavailable"),
    }
    acting: Responses = {**found, 409: problem("another analyst holds the case, or it is resolved")}

    def the_desk() -> CaseDesk:
        current = desk()
        if current is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no case store")
        return current

    def checked(case_id: str) -> str:
        if not _CASE_ID.match(case_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
        return case_id

    @router.get("/v1/cases", responses={k: v for k, v in found.items() if k != 404})
    async def list_cases(
        request: Request,
        state: list[CaseState] = Query(default=[]),
        outcome: Literal["review", "decline"] | None = None,
        min_amount: float | None = Query(None, ge=0, le=1e12, allow_inf_nan=False),
        max_amount: float | None = Query(None, ge=0, le=1e12, allow_inf_nan=False),
        model_version: str | None = Query(None, max_length=64),
        min_age_s: float | None = Query(None, ge=0, le=10 * 365 * 86_400, allow_inf_nan=False),
        limit: int = Query(100, ge=1, le=500),
        offset: int = Query(0, ge=0, le=1_000_000),
    ) -> JSONResponse:
        """The queue by priority (score x amount), oldest first among equals."""
        require(request, "review")
        wanted = QueueFilter(
            states=tuple(state) or OPEN_STATES,
            outcome=outcome,
            min_amount=min_amount,
            max_amount=max_amount,
            model_version=model_version,
            min_age_s=min_age_s,
            limit=limit,
            offset=offset,
        )
        rows = await run_in_threadpool(the_desk().store.queue, wanted)
        return JSONResponse({"cases": rows})

    @router.get("/v1/queue/stats", responses={k: v for k, v in found.items() if k != 404})
    async def queue_stats(request: Request) -> JSONResponse:
        """Queue depth by state, the oldest open case's age, verdicts per analyst (24 h)."""
        require(request, "review")
        return JSONResponse(await run_in_threadpool(the_desk().store.stats))

    @router.get("/v1/cases/{case_id}", responses=found)
    async def get_case(request: Request, case_id: str) -> JSONResponse:
        require(request, "review")
        page = await run_in_threadpool(the_desk().store.case, checked(case_id))
        if page is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
        return JSONResponse(page)

    async def run(
        principal: Principal, case_id: str, action: CaseAction, body: Any
    ) -> JSONResponse:
        try:
            result = await run_in_threadpool(
                act, the_desk(), checked(case_id), action, principal, body
            )
        except CaseNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case") from exc
        except CaseConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return JSONResponse(result.as_dict())

    @router.post("/v1/cases/{case_id}/claim", responses=acting)
    async def claim(request: Request, case_id: str) -> JSONResponse:
        """Claim the case for the key's analyst (a lease; claiming again renews it)."""
        return await run(require(request, "review"), case_id, "claim", None)

    @router.post("/v1/cases/{case_id}/release", responses=acting)
    async def release(request: Request, case_id: str) -> JSONResponse:
        return await run(require(request, "review"), case_id, "release", None)

    with_body: Responses = {**acting, 413: responses[413], 422: responses[422]}

    @router.post(
        "/v1/cases/{case_id}/verdict", openapi_extra=body_schema(CaseVerdict), responses=with_body
    )
    async def verdict(request: Request, case_id: str) -> JSONResponse:
        principal = require(request, "review")
        body = _decoded(_verdict_decoder, await read_body(request))
        return await run(principal, case_id, "verdict", body)

    @router.post(
        "/v1/cases/{case_id}/note",
        openapi_extra=body_schema(CaseNoteSubmission),
        responses=with_body,
    )
    async def note(request: Request, case_id: str) -> JSONResponse:
        principal = require(request, "review")
        body = _decoded(_note_decoder, await read_body(request))
        return await run(principal, case_id, "note", body)

    return router


def _decoded(decoder: Decoder[Any], body: bytes) -> Any:
    item = decoder.decode(body)
    if isinstance(item, Rejection):
        field = item.message.rsplit("at `", 1)[-1].rstrip("`") if "at `" in item.message else None
        error = {"reason": item.reason, "field": field, "message": item.message}
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [error])
    return item
