"""``fraudctl simulate``: simulated card transactions, as a parquet history or a live stream.

* ``--days DAYS --out-dir DIR``: a history, hive-partitioned parquet, labels and a manifest
  (see :mod:`streams.simulator.history`);
* ``--stream --rate R (--duration S | --count N)``: live transactions into the
  ``transactions`` topic, ground truth into Redis for the demo's oracle analyst.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import typer
from pydantic import Field
from rich.console import Console
from rich.table import Table

from services.connections import redis_client
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.kafka import ensure_topics, wait_for_broker
from streams.simulator import (
    SCENARIO_NAMES,
    FraudStats,
    GroundTruthStore,
    Simulator,
    SimulatorConfig,
    check_bounds,
    stream_transactions,
    write_history,
)
from streams.simulator.truth import DEFAULT_TTL_S


class SimulatorSettings(CommonSettings):
    """Service settings of the live simulator (``FRAUD_`` environment variables)."""

    simulator_client_id: str = Field("simulator", description="Kafka client.id of the producer")
    truth_ttl_s: int = Field(DEFAULT_TTL_S, ge=1, description="TTL of ground-truth keys in Redis")


def _stats_table(title: str, stats: FraudStats, extra: dict[str, str]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in extra.items():
        table.add_row(name, value)
    table.add_row("transactions", f"{stats.rows:,}")
    table.add_row("fraud rate", f"{stats.fraud_rate:.3%}")
    for scenario, count in stats.per_scenario.items():
        table.add_row(f"scenario {scenario} {SCENARIO_NAMES[scenario]}", f"{count:,}")
    return table


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def simulate(
    days: int | None = typer.Option(
        None, "--days", min=1, help="days of history to write (with --out-dir)"
    ),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="history folder to write"),
    start: str = typer.Option("2026-01-01", help="first day of the history (UTC)"),
    overwrite: bool = typer.Option(False, help="replace a history already in --out-dir"),
    new_pattern_from_day: int | None = typer.Option(
        None, help="history: card testing (scenario 4) from this day index on"
    ),
    stream: bool = typer.Option(False, "--stream", help="produce live transactions"),
    rate: float = typer.Option(1000.0, help="stream: transactions per second"),
    duration: float | None = typer.Option(None, help="stream: seconds to run"),
    count: int | None = typer.Option(None, help="stream: transactions to send"),
    new_pattern_after: float | None = typer.Option(
        None, help="stream: card testing (scenario 4) after this many seconds"
    ),
    first_day: int = typer.Option(0, help="stream: simulated day to start from"),
    run_id: str | None = typer.Option(None, help="stream: salt of transaction ids (random)"),
    truth: bool = typer.Option(True, help="stream: write ground truth to Redis"),
    seed: int = typer.Option(42, help="random seed"),
    small: bool = typer.Option(False, help="500 customers / 1,000 terminals profile"),
    cards: int | None = typer.Option(
        None,
        "--cards",
        min=1,
        help="world of this many cards (customers), two terminals each, at the handbook's "
        "density (default: the handbook's 5,000)",
    ),
    report: Path | None = typer.Option(None, help="write the run's numbers as JSON here"),
) -> None:
    """Generate simulated card transactions (history parquet or live stream)."""
    console = Console()
    if stream == (days is not None):
        raise _fail(console, "give exactly one of --days N (a history) or --stream")
    if small and cards is not None:
        raise _fail(console, "give at most one of --small or --cards")
    try:
        if cards is not None:
            config = SimulatorConfig.scaled(
                cards, seed=seed, new_pattern_from_day=new_pattern_from_day
            )
        else:
            profile = SimulatorConfig.small if small else SimulatorConfig.default
            config = profile(seed=seed, new_pattern_from_day=new_pattern_from_day)
        if days is not None:
            if out_dir is None:
                raise _fail(console, "--days needs --out-dir DIR")
            numbers = _history(console, config, days, out_dir, date.fromisoformat(start), overwrite)
        else:
            if (duration is None) == (count is None):
                raise _fail(console, "--stream needs exactly one of --duration or --count")
            numbers = _stream(
                console,
                config,
                rate,
                duration,
                count,
                new_pattern_after,
                first_day,
                run_id or uuid.uuid4().hex[:8],
                truth,
            )
    except (FraudError, ValueError) as exc:
        raise _fail(console, str(exc)) from exc
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")


def _history(
    console: Console,
    config: SimulatorConfig,
    days: int,
    out: Path,
    start: date,
    overwrite: bool,
) -> dict[str, Any]:
    with console.status(f"simulating {days} days..."):
        manifest = write_history(out, config, days, start, overwrite=overwrite)
    stats = FraudStats(
        rows=manifest["stats"]["rows"],
        per_scenario={
            s: manifest["stats"]["per_scenario"][name] for s, name in SCENARIO_NAMES.items()
        },
    )
    console.print(
        _stats_table(
            f"history {out}",
            stats,
            {
                "days": f"{days} from {start.isoformat()}",
                "seed": str(config.seed),
                "fingerprint": manifest["fingerprint"][:16],
            },
        )
    )
    for problem in manifest["bounds_violations"]:
        console.print(f"[yellow]outside configured bounds:[/yellow] {problem}")
    return manifest


def _stream(
    console: Console,
    config: SimulatorConfig,
    rate: float,
    duration: float | None,
    count: int | None,
    new_pattern_after: float | None,
    first_day: int,
    run_id: str,
    write_truth: bool,
) -> dict[str, Any]:
    settings = SimulatorSettings()
    topics = settings.topics()
    wait_for_broker(settings.kafka(), timeout_s=10.0)
    ensure_topics(settings.kafka(), topics, only=["transactions"])
    store = None
    if write_truth:
        client = redis_client(settings)
        store = GroundTruthStore(client, settings.redis_prefix, settings.truth_ttl_s)
    simulator = Simulator(config, run_id=run_id)
    console.print(f"streaming to {topics.transactions} at {rate:,.0f}/s (run {run_id})")
    result = stream_transactions(
        simulator,
        bootstrap=settings.kafka(),
        topic=topics.transactions,
        rate=rate,
        count=count,
        duration_s=duration,
        truth=store,
        new_pattern_after_s=new_pattern_after,
        first_day=first_day,
        client_id=settings.simulator_client_id,
    )
    console.print(
        _stats_table(
            f"stream {topics.transactions}",
            result.stats,
            {
                "target rate /s": f"{rate:,.1f}",
                "achieved rate /s": f"{result.achieved_rate:,.1f}",
                "delivered rate /s (incl. flush)": f"{result.delivered_rate:,.1f}",
                "elapsed s": f"{result.elapsed_s:.3f}",
                "max behind schedule ms": f"{result.max_behind_s * 1000:.2f}",
                "simulated days": str(result.simulated_days),
                "card testing from row": str(result.card_testing_from),
            },
        )
    )
    problems = check_bounds(config, result.stats, card_testing=new_pattern_after is not None)
    for problem in problems:
        console.print(f"[yellow]outside configured bounds:[/yellow] {problem}")
    return {"run_id": run_id, "seed": config.seed, **result.as_dict()}
