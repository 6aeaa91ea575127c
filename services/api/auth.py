"""API-key authentication: 401 without a known key, 403 for a key without the scope."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import HTTPException, Request, status


class ApiKeys:
    def __init__(self, key_scopes: Mapping[str, frozenset[str]]) -> None:
        self._keys = dict(key_scopes)

    def require(self, request: Request, scope: str) -> str:
        presented = request.headers.get("x-api-key", "")
        for key, scopes in self._keys.items():
            if hmac.compare_digest(presented.encode(), key.encode()):
                if scope not in scopes:
                    raise HTTPException(status.HTTP_403_FORBIDDEN, f"key lacks scope {scope!r}")
                return key
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown X-API-Key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
