"""API authentication and authorisation: 401 without a valid key, 403 for a key without
the scope, 429 (with ``Retry-After``) past the key's rate. The key is read from
``X-API-Key`` or ``Authorization: Bearer`` (what Prometheus can send when it scrapes)."""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from prometheus_client import Counter

from services.api.keys import KeyRing, Principal
from services.api.ratelimit import RateLimiter, retry_after_header

AUTH_FAILURES = Counter(
    "fraud_api_auth_failures_total",
    "API requests refused before any work: unknown key, missing scope, over the rate",
    ["reason"],
)


def presented_key(request: Request) -> str:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class ApiKeys:
    def __init__(self, ring: KeyRing, limiter: RateLimiter) -> None:
        self._ring = ring
        self._limiter = limiter

    def login(self, presented: str) -> Principal | None:
        """The key's principal, for the console's login form (no rate, no scope check)."""
        principal = self._ring.authenticate(presented.strip())
        if principal is None:
            AUTH_FAILURES.labels("unknown_key").inc()
        return principal

    def active(self, key_id: str) -> Principal | None:
        return self._ring.active(key_id)

    def require(self, request: Request, scope: str, cost: float = 1.0) -> Principal:
        """The caller, if its key is valid, holds ``scope`` and is within its rate; ``cost``
        is how many units of the rate the request takes (a batch: its size)."""
        principal = self._ring.authenticate(presented_key(request))
        if principal is None:
            AUTH_FAILURES.labels("unknown_key").inc()
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or unknown API key (X-API-Key or Authorization: Bearer)",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if scope not in principal.scopes:
            AUTH_FAILURES.labels("scope").inc()
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"key lacks scope {scope!r}")
        wait = self._limiter.acquire(principal.key_id, principal.rate_per_s, cost)
        if wait > 0:
            AUTH_FAILURES.labels("rate").inc()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "rate limit of this key exceeded",
                headers={"Retry-After": retry_after_header(wait)},
            )
        request.state.principal = principal
        return principal
