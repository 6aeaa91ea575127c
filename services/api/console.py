"""The analysts' review console: server-rendered pages over the case store.

    /console/login      an API key with the review scope -> a signed login cookie
    /console            the queue by priority, filters, an SLA timer per case
    /console/cases/ID   reasons, feature bars against the card's typical values, the
                        card's recent decisions, linked cases, notes, verdict keys
    /console/lead       queue depth, oldest open case, verdicts per analyst

Pages are Jinja2 templates; ``static/console.js`` (no build step) claims the case when its
page opens, renews the lease while it stays open, and binds the keys (f fraud, l legit,
e escalate, n note, j/k next/previous). Actions go through the same workflow as the REST
API (:func:`services.api.cases.act`) under the login's identity, CSRF-checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from services.api.auth import ApiKeys
from services.api.cases import CaseAction, act
from services.api.console_login import COOKIE, Login, LoginSigner, csrf_matches
from services.api.contracts import CaseNoteSubmission, CaseVerdict
from services.api.keys import Principal
from services.cases.desk import CaseDesk
from services.cases.errors import CaseConflict, CaseNotFound
from services.cases.store import QueueFilter

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
_ACTIONS: dict[str, type | None] = {
    "claim": None,
    "release": None,
    "verdict": CaseVerdict,
    "note": CaseNoteSubmission,
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class ConsoleContext:
    desk: Callable[[], CaseDesk | None]
    keys: Callable[[], ApiKeys]
    signer: Callable[[], LoginSigner | None]
    secure_cookie: Callable[[], bool]


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _duration(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(int(seconds), 3600)
    return f"{sign}{hours}h{rest // 60:02d}m" if hours else f"{sign}{rest // 60}m{rest % 60:02d}s"


def _bar(value: float | None, top: float) -> float:
    if value is None or top <= 0 or not math.isfinite(value):
        return 0.0
    return round(100.0 * min(abs(value) / top, 1.0), 1)


templates.env.filters["money"] = _money
templates.env.filters["duration"] = _duration


def console_router(ctx: ConsoleContext) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    def page(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
        response = templates.TemplateResponse(request, name, values, status_code=status_code)
        response.headers.update(SECURITY_HEADERS)
        return response

    def current(request: Request) -> tuple[Login, Principal] | None:
        signer = ctx.signer()
        login = signer.read(request.cookies.get(COOKIE)) if signer else None
        if login is None:
            return None
        principal = ctx.keys().active(login.key_id)
        if principal is None or "review" not in principal.scopes:
            return None
        return login, principal

    def to_login() -> Response:
        return RedirectResponse("/console/login", status_code=303)

    def desk_or_none() -> CaseDesk | None:
        return ctx.desk() if ctx.signer() is not None else None

    @router.get("/login")
    def login_form(request: Request) -> Response:
        return page(request, "login.html", error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        signer = ctx.signer()
        if signer is None:
            return page(request, "login.html", 503, error="the console is not configured")
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        presented = (form.get("api_key") or [""])[0]
        principal = ctx.keys().login(presented)
        if principal is None:
            return page(request, "login.html", 401, error="unknown API key")
        if "review" not in principal.scopes:
            return page(request, "login.html", 403, error="this key lacks the review scope")
        cookie, _ = signer.issue(principal.key_id, principal.name)
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(signer.max_age_s),
            httponly=True,
            samesite="strict",
            secure=ctx.secure_cookie(),
            path="/console",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        who = current(request)
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        if who is not None and csrf_matches(who[0], (form.get("csrf") or [""])[0]):
            response = RedirectResponse("/console/login", status_code=303)
            response.delete_cookie(COOKIE, path="/console")
            return response
        return to_login()

    @router.get("")
    async def queue(
        request: Request,
        outcome: str | None = None,
        min_amount: str | None = None,
        max_amount: str | None = None,
        model_version: str | None = None,
        min_age_min: str | None = None,
    ) -> Response:
        who = current(request)
        desk = desk_or_none()
        if who is None or desk is None:
            return to_login()
        kind = outcome if outcome in ("review", "decline") else ""
        low, high, age_min = _number(min_amount), _number(max_amount), _number(min_age_min)
        version = (model_version or "")[:64]
        filters: dict[str, Any] = {
            "outcome": kind,
            "min_amount": low,
            "max_amount": high,
            "model_version": version,
            "min_age_min": age_min,
        }
        wanted = QueueFilter(
            outcome=kind or None,
            min_amount=low,
            max_amount=high,
            model_version=version or None,
            min_age_s=age_min * 60 if age_min is not None else None,
            limit=200,
        )
        cases = await run_in_threadpool(desk.store.queue, wanted)
        return page(
            request,
            "queue.html",
            login=who[0],
            analyst=who[1].name,
            cases=cases,
            filters=filters,
            sla_s=desk.store.sla.total_seconds(),
        )

    @router.get("/lead")
    async def lead(request: Request) -> Response:
        who = current(request)
        desk = desk_or_none()
        if who is None or desk is None:
            return to_login()
        stats = await run_in_threadpool(desk.store.stats)
        return page(request, "lead.html", login=who[0], analyst=who[1].name, stats=stats)

    @router.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: str) -> Response:
        who = current(request)
        desk = desk_or_none()
        if who is None or desk is None:
            return to_login()
        found = await run_in_threadpool(desk.store.case, case_id[:64])
        if found is None:
            return page(request, "missing.html", 404, login=who[0], analyst=who[1].name)
        order = await run_in_threadpool(desk.store.queue_ids, QueueFilter())
        here = order.index(case_id) if case_id in order else -1
        neighbours = {
            "previous": order[here - 1] if here > 0 else "",
            "next": order[here + 1]
            if 0 <= here < len(order) - 1
            else (order[0] if here < 0 and order else ""),
        }
        for reason in found["reasons"]:
            top = max(abs(reason["value"]), abs(reason["typical"] or 0.0))
            reason["value_bar"] = _bar(reason["value"], top)
            reason["typical_bar"] = _bar(reason["typical"], top)
        return page(
            request,
            "case.html",
            login=who[0],
            analyst=who[1].name,
            case=found,
            neighbours=neighbours,
            lease_s=desk.store.lease.total_seconds(),
        )

    @router.post("/cases/{case_id}/{action}")
    async def case_action(request: Request, case_id: str, action: str) -> Response:
        who = current(request)
        desk = desk_or_none()
        if who is None or desk is None:
            return JSONResponse({"detail": "log in again"}, status_code=401)
        if not csrf_matches(who[0], request.headers.get("x-csrf-token")):
            return JSONResponse({"detail": "missing or wrong CSRF token"}, status_code=403)
        if action not in _ACTIONS:
            return JSONResponse({"detail": "no such action"}, status_code=404)
        decoded_as = _ACTIONS[action]
        body: Any = None
        if decoded_as is not None:
            try:
                body = msgspec.json.decode((await request.body())[:16384], type=decoded_as)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return JSONResponse({"detail": str(exc)[:200]}, status_code=422)
        named: CaseAction = action  # type: ignore[assignment]
        try:
            result = await run_in_threadpool(act, desk, case_id[:64], named, who[1], body)
        except CaseNotFound:
            return JSONResponse({"detail": "no such case"}, status_code=404)
        except CaseConflict as exc:
            return JSONResponse({"detail": str(exc), "holder": exc.holder}, status_code=409)
        return JSONResponse(result.as_dict())

    return router


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None
