"""API settings (``FRAUD_`` environment variables), built once in ``main()``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from services.api.audit import AuditDelivery
from services.cases.settings import CaseStoreSettings
from services.erasure.settings import ErasureSettings
from streams.errors import ConfigError


class ApiSettings(ErasureSettings, CaseStoreSettings):
    api_keys_file: Path | None = Field(
        None,
        description="the API key file (salted hashes, never secrets; `fraudctl keys create` "
        "writes it) [state_dir/api-keys.json]",
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
    reload_interval_s: float = Field(
        1.0, gt=0, description="how often the champion pointer is checked (the fallback)"
    )
    reload_on_events: bool | None = Field(
        None,
        description="check the champion as soon as model.events announces a change [on for "
        "an s3:// registry, off for a folder]",
    )
    rate_limit_per_s: float = Field(
        1000.0,
        ge=0,
        description="requests per second one key may make to one API process (a key's own "
        "limit, `fraudctl keys create --rate`, overrides it); 0 = unlimited",
    )
    rate_limit_burst_s: float = Field(
        2.0, gt=0, description="seconds of a key's rate it may spend at once"
    )
    metrics_public: bool = Field(
        False, description="serve /metrics without a key (else it needs the 'metrics' scope)"
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="also serve Prometheus metrics, without a key, on this port of `host` (a "
        "port kept inside the deployment's network, as the scorer's); 0 = off",
    )
    docs_public: bool = Field(
        False,
        description="serve /docs and /openapi.json without a key (else the 'docs' scope)",
    )
    cases_enabled: bool = Field(
        True, description="serve /v1/cases and the review console (/console) from the case store"
    )
    console_login_s: float = Field(8 * 3600.0, gt=0, description="how long a console login lasts")
    console_secret_file: Path | None = Field(
        None,
        description="the key that signs console login cookies (created, mode 0600, when "
        "missing) [state_dir/console-secret]",
    )
    tls_cert_file: Path | None = Field(None, description="serve HTTPS with this certificate")
    tls_key_file: Path | None = Field(None, description="private key of tls_cert_file")

    @model_validator(mode="after")
    def _check_tls(self) -> ApiSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError("FRAUD_TLS_CERT_FILE and FRAUD_TLS_KEY_FILE go together")
        for path in (self.tls_cert_file, self.tls_key_file):
            if path is not None and not path.is_file():
                raise ConfigError(f"{path}: no such file (a TLS setting points at it)")
        return self

    @property
    def console_secret_path(self) -> Path:
        return self.console_secret_file or self.state_dir / "console-secret"

    @property
    def keys_path(self) -> Path:
        return self.api_keys_file or self.state_dir / "api-keys.json"
