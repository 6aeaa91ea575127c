"""The demo's orchestration plan: processes, unique names, compressed time, retrainer env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.drift import CALENDAR_FEATURES
from services.demo.plan import DRIFT_IGNORE, LABEL_MATURITY_S, DemoPlan, make_plan
from services.retrainer.settings import RetrainerSettings

pytestmark = pytest.mark.unit


def _plan(cores: int = 2, **kw: object) -> DemoPlan:
    args: dict[str, object] = {
        "minutes": 8.0,
        "rate": 100.0,
        "state_dir": Path("/tmp/demo-state"),
        "cores": cores,
        "ports": [9001, 9002, 9003, 9004],
        "run_id": "abc123",
    }
    args.update(kw)
    return make_plan(**args)  # type: ignore[arg-type]


def test_two_cores_run_two_scorers_and_every_service_once() -> None:
    plan = _plan()
    names = [p.name for p in plan.processes()]
    assert names == [
        "scorer-0",
        "scorer-1",
        "api",
        "feedback",
        "retrainer",
        "cases",
        "oracle",
        "chargebacks",
    ]
    specs = {p.name: p for p in plan.processes()}
    assert specs["scorer-0"].args == (
        "serve",
        "scorer",
        "--instance-index",
        "0",
        "--metrics-port",
        "9001",
    )
    assert specs["scorer-1"].metrics_port == 9002
    assert specs["retrainer"].args == ("serve", "retrainer", "--metrics-port", "9003")
    assert specs["api"].args == ("serve", "api", "--port", "9004")
    assert specs["api"].extra_env["FRAUD_API_KEYS_FILE"] == str(plan.api_keys_file)
    assert specs["cases"].args == ("serve", "cases")
    assert specs["oracle"].args == ("review", "--auto", "--case-store", "--delay-s", "20.0")
    assert specs["chargebacks"].args == ("review", "--chargebacks", "--delay-s", "4.0")
    logs = Path("/tmp/demo-state/logs/abc123")
    assert all(p.log == logs / f"{p.name}.log" for p in plan.processes())


def test_one_core_runs_one_scorer() -> None:
    plan = _plan(cores=1)
    assert [p.name for p in plan.processes() if p.name.startswith("scorer")] == ["scorer-0"]
    assert plan.retrainer_port == 9002 and plan.api_port == 9003


def test_too_few_ports_is_an_error() -> None:
    with pytest.raises(ValueError, match="free ports"):
        _plan(ports=[1, 2, 3])


def test_names_are_unique_per_run_so_reruns_never_collide() -> None:
    plan = _plan()
    assert plan.topic_prefix == "demo-abc123."
    assert plan.redis_prefix == "demo:abc123"
    assert plan.run_dir == Path("/tmp/demo-state/runs/abc123")
    env = plan.common_env("127.0.0.1:19092", "redis://127.0.0.1:6379/0")
    assert env["FRAUD_TOPIC_PREFIX"] == "demo-abc123."
    assert env["FRAUD_STATE_DIR"] == "/tmp/demo-state/runs/abc123"
    specs = {p.name: p for p in plan.processes()}
    # consumer groups and static member ids are per run too
    assert specs["scorer-1"].extra_env["FRAUD_GROUP_ID"] == "demo-abc123.scorer"
    assert specs["scorer-1"].extra_env["FRAUD_INSTANCE_ID"] == "demo-abc123.scorer-1"
    assert specs["retrainer"].extra_env["FRAUD_GROUP_ID"] == "demo-abc123.retrainer"
    other = _plan(run_id=None)
    assert other.topic_prefix != plan.topic_prefix


def test_time_is_compressed_one_simulated_day_per_segment() -> None:
    plan = _plan(switch_after_s=60.0)
    assert plan.segment_s == 10.0  # 1,000 tx per simulated day at 100 tx/s
    assert plan.compression == 8640.0  # 86,400 s per 10 s
    assert plan.switch_segment == 6
    # the retrainer's first check comes 70 s after the switch: (60 + 70) s at 100 tx/s
    assert plan.check_every_rows == 13_000
    assert plan.deadline_s == 480.0


def test_the_gates_window_always_holds_half_a_day_of_mature_labels() -> None:
    for rate in (25.0, 50.0, 100.0, 200.0, 400.0):
        plan = _plan(rate=rate)
        # worst case: the last day has just begun (the window's last day adds nothing)
        mature_s = (plan.test_days - 1) * plan.segment_s - LABEL_MATURITY_S
        assert mature_s >= plan.segment_s / 2, rate
    assert _plan(rate=100.0).test_days == 3  # 12 s maturity = 1.2 days of 10 s


def test_default_switch_is_a_fifth_of_a_short_run_and_at_most_a_minute() -> None:
    assert _plan(minutes=2.0).switch_after_s == 24.0
    assert _plan(minutes=8.0).switch_after_s == 60.0


def test_the_retrainer_env_is_valid_retrainer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan()
    spec = next(p for p in plan.processes() if p.name == "retrainer")
    for key, value in {**plan.common_env("b:1", "redis://r:1/0"), **spec.extra_env}.items():
        monkeypatch.setenv(key, value)
    settings = RetrainerSettings()
    assert settings.time_compression == plan.compression
    assert settings.check_every_rows == plan.check_every_rows
    assert settings.test_days == plan.test_days
    assert settings.group_id == "demo-abc123.retrainer"
    assert settings.history_dir == plan.history_dir
    assert set(settings.drift_ignore) == set(DRIFT_IGNORE)
    assert set(CALENDAR_FEATURES) <= set(json.loads(spec.extra_env["FRAUD_DRIFT_IGNORE"]))
