"""The retrainer refuses settings whose gates' window is too short for the label maturity."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo.plan import LABEL_MATURITY_S, make_plan
from services.retrainer.settings import RetrainerSettings, gates_window_days
from streams.errors import ConfigError

pytestmark = pytest.mark.unit


def test_the_defaults_keep_the_rule() -> None:
    settings = RetrainerSettings()
    assert settings.label_maturity_s == 7 * 86_400.0
    assert settings.test_days == gates_window_days(7 * 86_400.0) == 9


def test_a_window_shorter_than_the_rule_is_a_config_error_naming_both_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUD_TEST_DAYS", "7")
    with pytest.raises(ConfigError) as caught:
        RetrainerSettings()
    text = str(caught.value)
    assert "FRAUD_TEST_DAYS=7" in text and "FRAUD_LABEL_MATURITY_S=604800" in text
    assert "at least 9 days" in text


def test_compressed_time_counts_maturity_in_served_days() -> None:
    # 12 s of maturity at 1,000 tx per simulated day and 100 tx/s: 1.2 served days
    compression = 86_400.0 * 100 / 1000
    assert gates_window_days(12.0, 86_400.0 / compression) == 3
    RetrainerSettings(label_maturity_s=12.0, time_compression=compression, test_days=3)
    with pytest.raises(ConfigError, match="FRAUD_TIME_COMPRESSION=8640"):
        RetrainerSettings(label_maturity_s=12.0, time_compression=compression, test_days=2)
    assert gates_window_days(0.0) == 2  # the last partial day and half a mature one


@pytest.mark.parametrize("rate", [50.0, 100.0, 250.0, 400.0])
def test_the_demo_plan_builds_settings_the_retrainer_accepts(rate: float, tmp_path: Path) -> None:
    plan = make_plan(minutes=10, rate=rate, state_dir=tmp_path, cores=2, ports=[1, 2, 3, 4])
    env = plan.retrainer_env()
    settings = RetrainerSettings(
        time_compression=float(env["FRAUD_TIME_COMPRESSION"]),
        label_maturity_s=LABEL_MATURITY_S,
        test_days=int(env["FRAUD_TEST_DAYS"]),
    )
    assert settings.test_days == plan.test_days
