"""The load test's own options: Locust command-line flags, each also a ``FRAUD_*`` variable.

They are Locust arguments (not a separate settings file) so the web UI shows them, Locust
hands them to worker processes, and ``locust --help`` documents them. After parsing they
are validated once into frozen models (:class:`LoadOptions`, :class:`SlaThresholds`).
Connection settings (``FRAUD_KAFKA_BOOTSTRAP``, ``FRAUD_TOPIC_PREFIX``) are the services'
own :class:`services.settings.CommonSettings`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from loadtest.feed import World
from loadtest.shapes import SHAPES, ShapeName
from loadtest.sla import SlaThresholds


class LoadOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: ShapeName = "constant"
    user_rate: float = Field(10.0, gt=0, le=50_000, description="transactions/s per user")
    decision_timeout_s: float = Field(5.0, gt=0, description="no decision by then = failure")
    world: World = "default"
    seed: int = Field(7, ge=0)
    api_key: SecretStr = SecretStr("")
    sla_report: str | None = None


def add_arguments(parser: Any) -> None:
    """Register the flags on Locust's parser (``locust -f loadtest/locustfile.py --help``)."""

    def flag(name: str, env: str, **kwargs: Any) -> None:
        help_text = f"{kwargs.pop('help')} [env {env}]"
        parser.add_argument(name, env_var=env, help=help_text, **kwargs)

    flag(
        "--shape",
        "FRAUD_LOADTEST_SHAPE",
        choices=SHAPES,
        default="constant",
        help="load profile: constant | step (ramp to find the knee) | spike | attack (a "
        "spike whose traffic is an attack burst: many transactions flagged)",
    )
    flag(
        "--user-rate",
        "FRAUD_LOADTEST_USER_RATE",
        type=float,
        default=10.0,
        help="transactions per second sent by each user",
    )
    flag(
        "--decision-timeout-s",
        "FRAUD_LOADTEST_DECISION_TIMEOUT_S",
        type=float,
        default=5.0,
        help="a transaction without a decision after this long is a failure",
    )
    flag(
        "--world",
        "FRAUD_LOADTEST_WORLD",
        choices=("small", "default"),
        default="default",
        help="simulated world: small (500 customers) or default (5,000)",
    )
    flag("--seed", "FRAUD_LOADTEST_SEED", type=int, default=7, help="simulator seed")
    flag(
        "--api-key",
        "FRAUD_LOADTEST_API_KEY",
        default="",
        is_secret=True,
        help="X-API-Key for the REST user (scope: score)",
    )
    flag(
        "--step-users",
        "FRAUD_LOADTEST_STEP_USERS",
        type=int,
        default=None,
        help="step shape: users added per step (default users/5)",
    )
    flag(
        "--step-time-s",
        "FRAUD_LOADTEST_STEP_TIME_S",
        type=float,
        default=20.0,
        help="step shape: seconds per step",
    )
    flag(
        "--spike-users",
        "FRAUD_LOADTEST_SPIKE_USERS",
        type=int,
        default=None,
        help="spike and attack shapes: users during the spike (default 3 x users)",
    )
    flag(
        "--spike-at-s",
        "FRAUD_LOADTEST_SPIKE_AT_S",
        type=float,
        default=None,
        help="spike and attack shapes: start of the spike (default a third of the run time)",
    )
    flag(
        "--spike-time-s",
        "FRAUD_LOADTEST_SPIKE_TIME_S",
        type=float,
        default=10.0,
        help="spike and attack shapes: length of the spike",
    )
    flag(
        "--sla-p95-ms",
        "FRAUD_SLA_P95_MS",
        type=float,
        default=None,
        help="SLA: p95 end-to-end latency limit in ms",
    )
    flag(
        "--sla-p99-ms",
        "FRAUD_SLA_P99_MS",
        type=float,
        default=None,
        help="SLA: p99 end-to-end latency limit in ms",
    )
    flag(
        "--sla-max-fail-ratio",
        "FRAUD_SLA_MAX_FAIL_RATIO",
        type=float,
        default=0.0,
        help="SLA: largest allowed share of failed requests (0.01 = 1%%)",
    )
    flag(
        "--sla-min-rps",
        "FRAUD_SLA_MIN_RPS",
        type=float,
        default=None,
        help="SLA: lowest allowed throughput (decisions per second)",
    )
    flag(
        "--sla-report",
        "FRAUD_SLA_REPORT",
        default=None,
        help="write the SLA verdict as JSON to this file",
    )


def load_options(parsed: argparse.Namespace) -> LoadOptions:
    return LoadOptions(
        shape=parsed.shape,
        user_rate=parsed.user_rate,
        decision_timeout_s=parsed.decision_timeout_s,
        world=parsed.world,
        seed=parsed.seed,
        api_key=SecretStr(parsed.api_key or ""),
        sla_report=parsed.sla_report or None,
    )


def sla_thresholds(parsed: argparse.Namespace) -> SlaThresholds:
    return SlaThresholds(
        p95_ms=parsed.sla_p95_ms,
        p99_ms=parsed.sla_p99_ms,
        max_fail_ratio=parsed.sla_max_fail_ratio,
        min_rps=parsed.sla_min_rps,
    )
