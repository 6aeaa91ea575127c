"""``fraudctl loadtest``: a headless Locust run against the latency SLA, in one command.

Runs ``locust -f loadtest/locustfile.py --headless ...`` as a subprocess (services never
import ``loadtest``), passes its exit code through (0 = SLA met, 1 = SLA missed, 2 = could
not start: no broker or no topics) and keeps Locust's
CSV, HTML and the SLA verdict under ``bench/results/locust-<date>*``. Broker and topics
come from the usual ``FRAUD_KAFKA_BOOTSTRAP`` / ``FRAUD_TOPIC_PREFIX``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console

from streams.errors import ConfigError

console = Console(stderr=True)
Shape = Literal["constant", "step", "spike", "attack"]
RATE_PER_USER = 50.0  # default users = rate / 50: each greenlet paces 50 tx/s comfortably


@dataclass(frozen=True)
class LoadTestPlan:
    rate: float
    duration_s: float
    users: int
    shape: Shape = "constant"
    http: bool = False
    host: str = "http://127.0.0.1:8000"
    api_key: str = ""
    sla_p95_ms: float | None = None
    sla_p99_ms: float | None = 50.0
    sla_max_fail_ratio: float = 0.0
    sla_min_rps: float | None = None
    world: str = "default"
    decision_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0 or self.users < 1:
            raise ConfigError("rate and duration must be > 0, users >= 1")
        if self.shape not in ("constant", "step", "spike", "attack"):
            raise ConfigError(f"unknown shape {self.shape!r}: constant | step | spike | attack")
        if self.http and not self.api_key:
            raise ConfigError("--http needs an API key (--api-key or FRAUD_LOADTEST_API_KEY)")


def locustfile() -> Path:
    """The locustfile of the installed ``loadtest`` package (found, not imported)."""
    spec = importlib.util.find_spec("loadtest")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the loadtest package is not installed (run `make setup`)")
    return Path(next(iter(spec.submodule_search_locations))) / "locustfile.py"


def locust_argv(plan: LoadTestPlan, csv_prefix: Path, python: str = sys.executable) -> list[str]:
    """The Locust command line for ``plan`` (the offered load is ``users x user-rate``)."""
    argv = [python, "-m", "locust", "-f", str(locustfile()), "--headless", "--only-summary"]
    argv += ["--users", str(plan.users), "--spawn-rate", str(plan.users)]
    argv += ["--run-time", f"{math.ceil(plan.duration_s)}s", "--stop-timeout", "0"]
    argv += ["--user-rate", f"{plan.rate / plan.users:g}", "--shape", plan.shape]
    argv += ["--world", plan.world, "--decision-timeout-s", f"{plan.decision_timeout_s:g}"]
    argv += ["--csv", str(csv_prefix), "--csv-full-history", "--html", f"{csv_prefix}.html"]
    argv += ["--sla-max-fail-ratio", f"{plan.sla_max_fail_ratio:g}"]
    for flag, value in (
        ("--sla-p95-ms", plan.sla_p95_ms),
        ("--sla-p99-ms", plan.sla_p99_ms),
        ("--sla-min-rps", plan.sla_min_rps),
    ):
        if value is not None:
            argv += [flag, f"{value:g}"]
    if plan.shape == "step":
        step_users = max(1, plan.users // 5)
        steps = math.ceil(plan.users / step_users)
        argv += ["--step-users", str(step_users), "--step-time-s", f"{plan.duration_s / steps:g}"]
    elif plan.shape in ("spike", "attack"):
        argv += ["--spike-users", str(3 * plan.users)]
        argv += ["--spike-time-s", f"{max(5.0, plan.duration_s / 6):g}"]
    if plan.http:
        argv += ["HttpScoreUser", "--host", plan.host]
    else:
        argv += ["KafkaTransactionUser"]
    return argv


def loadtest(
    rate: float = typer.Option(200.0, help="offered load, transactions (or requests) per second"),
    duration: float = typer.Option(60.0, help="seconds of load"),
    sla_p99_ms: float = typer.Option(50.0, help="SLA: p99 end-to-end latency, ms (0 = off)"),
    sla_p95_ms: float = typer.Option(0.0, help="SLA: p95 end-to-end latency, ms (0 = off)"),
    sla_max_fail_ratio: float = typer.Option(0.0, help="SLA: allowed share of failures"),
    sla_min_rps: float = typer.Option(0.0, help="SLA: minimum decisions per second (0 = off)"),
    users: int = typer.Option(0, help=f"Locust users (0 = rate / {RATE_PER_USER:g})"),
    shape: str = typer.Option(
        "constant",
        help="constant | step (find the knee) | spike | attack (a spike of attack traffic: "
        "many transactions flagged)",
    ),
    http: bool = typer.Option(False, "--http", help="load POST /v1/score instead of Kafka"),
    host: str = typer.Option("http://127.0.0.1:8000", help="REST API base URL (--http)"),
    api_key: str = typer.Option("", envvar="FRAUD_LOADTEST_API_KEY", help="X-API-Key (--http)"),
    world: str = typer.Option("default", help="simulated world: small | default"),
    decision_timeout_s: float = typer.Option(5.0, help="no decision by then = a failure"),
    out_dir: Path = typer.Option(Path("bench/results"), help="where CSV/HTML/verdict go"),
) -> None:
    """Run Locust headless against the SLA: exit 0 met, 1 missed, 2 could not start."""
    try:
        plan = LoadTestPlan(
            rate=rate,
            duration_s=duration,
            users=users or max(1, math.ceil(rate / RATE_PER_USER)),
            shape=shape,  # type: ignore[arg-type]  # validated by the plan
            http=http,
            host=host,
            api_key=api_key,
            sla_p95_ms=sla_p95_ms or None,
            sla_p99_ms=sla_p99_ms or None,
            sla_max_fail_ratio=sla_max_fail_ratio,
            sla_min_rps=sla_min_rps or None,
            world=world,
            decision_timeout_s=decision_timeout_s,
        )
    except ConfigError as exc:
        console.print(f"[red]loadtest:[/red] {exc}")
        raise typer.Exit(2) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"locust-{datetime.now():%Y-%m-%dT%H-%M-%S}"
    argv = locust_argv(plan, prefix)
    env = dict(os.environ)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # Locust needs gevent's patching (tests set it)
    if plan.http:
        env["FRAUD_LOADTEST_API_KEY"] = plan.api_key  # not on the command line (ps shows it)
    console.print(f"$ {' '.join(argv[1:])}", soft_wrap=True, highlight=False, markup=False)
    code = subprocess.run(argv, env=env, check=False).returncode
    console.print(f"results: {prefix}_*.csv, {prefix}.html, {prefix}_sla.json", soft_wrap=True)
    raise typer.Exit(code)
