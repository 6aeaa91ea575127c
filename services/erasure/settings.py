"""Where an erasure looks (``FRAUD_`` environment variables): shared by the CLI and the API."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.settings import CommonSettings, store_location


class ErasureSettings(CommonSettings):
    training_dir: Path | str | None = Field(
        None,
        description="training store: a folder or s3://bucket/prefix [state_dir/training]",
    )
    feedback_app_id: str = Field(
        "feedback",
        description="faust app id of the feedback processor (its changelog topics are named "
        "after it, behind the topic prefix)",
    )
    erasure_dir: Path | None = Field(
        None, description="where the erasure audit is kept (default <state_dir>/erasure)"
    )

    @property
    def training_root(self) -> Path | str:
        return store_location(self.training_dir, self.state_dir / "training")

    @property
    def erasure_root(self) -> Path:
        return self.erasure_dir or self.state_dir / "erasure"

    def changelogs(self) -> tuple[str, str]:
        app_id = f"{self.topic_prefix}{self.feedback_app_id}"
        return f"{app_id}.served-changelog", f"{app_id}.pending-changelog"
