"""API settings (``FRAUD_`` environment variables), built once in ``main()``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from services.api.audit import AuditDelivery
from services.settings import CommonSettings
from streams.errors import ConfigError

Scope = Literal["score", "labels", "read"]
SCOPES: tuple[Scope, ...] = ("score", "labels", "read")


class ApiSettings(CommonSettings):
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="comma-separated KEY:scope+scope entries, e.g. 'k1:score+read,k2:labels'",
    )
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=1, le=65535)
    max_request_bytes: int = Field(1024 * 1024, ge=1024, description="request body limit")
    max_batch: int = Field(1000, ge=1, description="max transactions per /v1/score call")
    dedupe_ttl_s: int = Field(3600, ge=60)
    audit_delivery: AuditDelivery = Field(
        "acked",
        description="'acked': answer after the broker acknowledged the decision records; "
        "'async': answer at once, acknowledgements served in the background (see audit.py)",
    )
    audit_ack_timeout_s: float = Field(10.0, gt=0, description="'acked' mode's wait")
    reload_interval_s: float = Field(1.0, gt=0)

    def key_scopes(self) -> dict[str, frozenset[str]]:
        """Parse ``api_keys``; a malformed entry is a configuration error, not a guess."""
        out: dict[str, frozenset[str]] = {}
        for entry in filter(None, (e.strip() for e in self.api_keys.get_secret_value().split(","))):
            key, sep, scopes = entry.partition(":")
            wanted = frozenset(s for s in scopes.split("+") if s)
            if not sep or not key or not wanted or not wanted <= set(SCOPES):
                raise ConfigError(
                    f"FRAUD_API_KEYS entry {key[:4]}...: expected KEY:scope[+scope] with "
                    f"scopes from {SCOPES}"
                )
            out[key] = wanted
        if not out:
            raise ConfigError("FRAUD_API_KEYS is empty: the API refuses to start without keys")
        return out
