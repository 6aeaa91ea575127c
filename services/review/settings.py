"""Review consumer settings (``FRAUD_`` environment variables), built once in the command."""

from __future__ import annotations

import getpass

from pydantic import Field

from services.settings import CommonSettings


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): a neutral analyst id
        return "analyst"


class ReviewSettings(CommonSettings):
    review_group_id: str = Field("review", description="consumer group of fraud.review")
    chargeback_group_id: str = Field(
        "chargebacks", description="consumer group of the demo chargeback feed"
    )
    analyst: str = Field(default_factory=_user, description="analyst id written on labels")
    history_cards: int = Field(10_000, ge=1, description="cards kept in the history index")
    history_per_card: int = Field(10, ge=1, description="decisions kept per card")
    history_lookback_s: float = Field(
        86_400.0, gt=0, description="how far back the history index starts reading"
    )
    batch_max: int = Field(100, ge=1, description="max cases fetched per poll")
    metrics_port: int = Field(
        0, ge=0, description="Prometheus /metrics port of --auto / --chargebacks (0 = off)"
    )

    def review_group(self) -> str:
        return f"{self.topic_prefix}{self.review_group_id}"

    def chargeback_group(self) -> str:
        return f"{self.topic_prefix}{self.chargeback_group_id}"
