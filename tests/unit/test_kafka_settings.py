"""The consumer-group assignment strategy: one setting, validated, reaching the client config,
eager by default (the embedded broker), cooperative in the production compose file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.scorer.settings import ScorerSettings
from streams.kafka import DEFAULT_ASSIGNMENT_STRATEGY, consumer_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_is_an_eager_strategy_and_reaches_the_client_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FRAUD_KAFKA_ASSIGNMENT_STRATEGY", raising=False)
    settings = ScorerSettings()
    assert settings.kafka_assignment_strategy == DEFAULT_ASSIGNMENT_STRATEGY == "roundrobin"
    config = consumer_config("h:1", group_id="g", client_id="c")
    assert config["partition.assignment.strategy"] == "roundrobin"


def test_the_environment_selects_cooperative_sticky_and_rejects_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_ASSIGNMENT_STRATEGY", "cooperative-sticky")
    chosen = ScorerSettings().kafka_assignment_strategy
    config = consumer_config("h:1", group_id="g", client_id="c", assignment_strategy=chosen)
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    monkeypatch.setenv("FRAUD_KAFKA_ASSIGNMENT_STRATEGY", "sticky-ish")
    with pytest.raises(ValidationError, match="kafka_assignment_strategy"):
        ScorerSettings()


def test_the_production_compose_file_uses_the_cooperative_protocol() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-fraud-env"]
    assert env["FRAUD_KAFKA_ASSIGNMENT_STRATEGY"] == "cooperative-sticky"
