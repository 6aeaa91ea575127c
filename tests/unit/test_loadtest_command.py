"""``fraudctl loadtest``: the Locust command line it builds is one Locust accepts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

# Importing Locust gevent-patches the whole process unless told not to; this is pytest.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"

from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments

from loadtest.cli_loadtest import LoadTestPlan, locust_argv, locustfile
from loadtest.options import add_arguments, load_options, sla_thresholds
from loadtest.shapes import Attack, Spike, Step, build_profile
from loadtest.sla import SlaThresholds
from streams.errors import ConfigError

pytestmark = pytest.mark.unit

PREFIX = Path("bench/results/locust-2026-01-01T00-00-00")


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse with Locust's own parser plus the locustfile's flags, as ``locust`` does."""
    assert argv[1:3] == ["-m", "locust"]
    parser = get_empty_argument_parser(add_help=False, default_config_files=[])
    setup_parser_arguments(parser)
    add_arguments(parser)
    return parser.parse_args(argv[3:])


def test_kafka_run_flags() -> None:
    plan = LoadTestPlan(rate=200, duration_s=30, users=4, sla_p99_ms=50)
    parsed = parse(locust_argv(plan, PREFIX, python="python"))
    assert parsed.headless and parsed.user_classes == ["KafkaTransactionUser"]
    assert (parsed.num_users, parsed.spawn_rate, parsed.run_time) == (4, 4.0, 30)
    assert load_options(parsed).user_rate == 50.0  # 4 users x 50 tx/s = the asked 200 tx/s
    assert sla_thresholds(parsed) == SlaThresholds(p99_ms=50)
    assert parsed.csv_prefix == str(PREFIX) and parsed.html_file == f"{PREFIX}.html"
    assert Path(parsed.locustfile) == locustfile() and locustfile().is_file()


def test_step_and_spike_runs_fill_the_duration() -> None:
    step = parse(
        locust_argv(LoadTestPlan(rate=1000, duration_s=100, users=20, shape="step"), PREFIX)
    )
    assert build_profile(step) == Step(20, 4, 20.0, 20.0, 100.0)  # 5 steps of 20 s
    spike = parse(
        locust_argv(LoadTestPlan(rate=100, duration_s=60, users=2, shape="spike"), PREFIX)
    )
    assert build_profile(spike) == Spike(2, 6, 20.0, 10.0, 2.0, 60.0)
    attack = parse(
        locust_argv(LoadTestPlan(rate=100, duration_s=60, users=2, shape="attack"), PREFIX)
    )
    assert build_profile(attack) == Attack(Spike(2, 6, 20.0, 10.0, 2.0, 60.0))


def test_http_run_targets_the_api_and_keeps_the_key_off_the_command_line() -> None:
    plan = LoadTestPlan(rate=100, duration_s=10, users=2, http=True, api_key="secret-key")
    argv = locust_argv(plan, PREFIX)
    assert "secret-key" not in " ".join(argv)
    parsed = parse(argv)
    assert parsed.user_classes == ["HttpScoreUser"] and parsed.host == "http://127.0.0.1:8000"


def test_plans_that_cannot_run_are_refused() -> None:
    with pytest.raises(ConfigError):
        LoadTestPlan(rate=0, duration_s=10, users=1)
    with pytest.raises(ConfigError):
        LoadTestPlan(rate=10, duration_s=10, users=1, shape="sawtooth")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        LoadTestPlan(rate=10, duration_s=10, users=1, http=True)  # no API key
