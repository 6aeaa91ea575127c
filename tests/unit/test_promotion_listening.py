"""Who reads model.events to reload at once: object-store registries by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.settings import ApiSettings
from services.scorer.settings import ScorerSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("settings_class", [ScorerSettings, ApiSettings])
def test_a_folder_registry_polls_and_an_s3_registry_listens_unless_told(
    settings_class: type[ScorerSettings] | type[ApiSettings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("FRAUD_RELOAD_ON_EVENTS", "FRAUD_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    folder = settings_class(state_dir=tmp_path)
    assert folder.reload_on_events is None
    assert folder.listens_for_promotions(folder.reload_on_events) is False
    shared = settings_class(state_dir=tmp_path, registry_url="s3://models/fraud")
    assert shared.listens_for_promotions(shared.reload_on_events) is True
    monkeypatch.setenv("FRAUD_RELOAD_ON_EVENTS", "true")
    told = settings_class(state_dir=tmp_path)
    assert told.listens_for_promotions(told.reload_on_events) is True
    monkeypatch.setenv("FRAUD_RELOAD_ON_EVENTS", "false")
    quiet = settings_class(state_dir=tmp_path, registry_url="s3://models/fraud")
    assert quiet.listens_for_promotions(quiet.reload_on_events) is False
