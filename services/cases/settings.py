"""Case store settings (``FRAUD_`` environment variables), shared by the ingester and the
API that serves the console."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.settings import CommonSettings


class CaseStoreSettings(CommonSettings):
    cases_db_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the case store (secret: it may hold a password), e.g. "
        "postgresql+psycopg://user@host:5432/db [sqlite:///state_dir/cases.db]",
    )
    case_lease_s: float = Field(
        600.0, gt=0, description="how long a claim holds a case (the console renews it)"
    )
    case_approval_amount: float = Field(
        1000.0,
        ge=0,
        description="a fraud verdict (a confirmed decline) on a transaction above this amount "
        "needs a second analyst's approval; 0 = every one does",
    )
    case_sla_s: float = Field(
        3600.0, gt=0, description="how long after the decision a case may wait for a verdict"
    )
    case_history_per_card: int = Field(
        20, ge=1, description="recent decisions kept per card for the case page"
    )

    def cases_url(self) -> str:
        if self.cases_db_url is not None:
            return self.cases_db_url.get_secret_value()
        return f"sqlite:///{self.state_dir / 'cases.db'}"


class CaseIngestSettings(CaseStoreSettings):
    cases_group_id: str = Field(
        "cases", description="consumer group of the case ingester (fraud.review, scored)"
    )
    case_instance_id: str | None = Field(
        None,
        description="static group membership id of a case ingester (group.instance.id) "
        "[<host>-cases]",
    )
    cases_metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics port of the case ingester; 0 = off"
    )
    case_batch_max: int = Field(500, ge=1, description="records per ingest transaction")

    def cases_group(self) -> str:
        return f"{self.topic_prefix}{self.cases_group_id}"
