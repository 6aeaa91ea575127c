"""The API's request metrics: latency per route, method and status, as Prometheus sees it.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which copies every body
through an extra task): it times the whole request, from the first byte read to the last
byte sent, and labels it with the route's template (``/v1/score``), never the raw path, so
an unknown path cannot mint a new series.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram

REQUEST_SECONDS = Histogram(
    "fraud_api_request_duration_seconds",
    "Time to answer an API request, by route template, method and status code",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0),
)
UNMATCHED = "unmatched"
"""The route label of a request no route matched (404s of arbitrary paths)."""

Scope = dict[str, Any]
Receive = Any
Send = Any


class RequestMetrics:
    """Observe :data:`REQUEST_SECONDS` for every HTTP request through ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            REQUEST_SECONDS.labels(template, scope.get("method", ""), str(status)).observe(
                time.perf_counter() - started
            )
