"""When the retrainer starts a challenger: triggers and cool-down, on a fake clock."""

from __future__ import annotations

import pytest

from services.retrainer.policy import RetrainPolicy

pytestmark = pytest.mark.unit


def test_each_trigger_names_itself() -> None:
    policy = RetrainPolicy(cooldown_s=100, min_new_labels=50)
    assert policy.should_start(0, drift=True, quality_drop=False, new_labels=0) == ["drift"]
    assert policy.should_start(0, drift=False, quality_drop=True, new_labels=49) == ["quality_drop"]
    assert policy.should_start(0, drift=False, quality_drop=False, new_labels=50) == [
        "new_labels=50"
    ]
    assert policy.should_start(0, drift=False, quality_drop=False, new_labels=49) == []


def test_disabled_triggers_are_ignored() -> None:
    policy = RetrainPolicy(cooldown_s=0, min_new_labels=10, on_drift=False, on_quality=False)
    assert policy.should_start(0, drift=True, quality_drop=True, new_labels=0) == []


def test_cool_down_and_a_run_in_flight_block_new_runs() -> None:
    policy = RetrainPolicy(cooldown_s=100, min_new_labels=50)
    policy.started(1000.0)
    assert policy.should_start(1200, drift=True, quality_drop=False, new_labels=0) == []  # running
    policy.finished()
    assert policy.should_start(1099.9, drift=True, quality_drop=False, new_labels=0) == []
    assert policy.should_start(1100.0, drift=True, quality_drop=False, new_labels=0) == ["drift"]
