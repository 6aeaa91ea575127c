"""``fraudctl serve retrainer`` and ``fraudctl retrain --once``: drift-gated retraining.

Settings come from ``FRAUD_*`` environment variables (:class:`RetrainerSettings`); the few
options here override the ones an operator changes by hand.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from services.commands.options import overrides, setting_option
from streams.errors import FraudError

if TYPE_CHECKING:
    from services.retrainer.events import EventPublisher

console = Console(stderr=True)


def announce(publisher: EventPublisher, timeout_s: float = 15.0) -> None:
    """Send the events a one-shot command queued; what the broker does not take in time
    waits in the outbox for the retrainer (or the next command) to announce."""
    if publisher.drain(timeout_s):
        console.print(f"announced {publisher.delivered} events on {publisher.topic}")
    else:
        waiting = publisher.waiting()
        console.print(
            f"[yellow]{len(waiting)} events not acknowledged by the broker in {timeout_s:g}s: "
            "they wait in the outbox and are announced when it answers[/yellow]"
        )
    publisher.close(timeout_s=0.0)


def retrainer(
    metrics_port: int | None = setting_option(
        "metrics_port", "--metrics-port", help="Prometheus /metrics port, 0 = off (9103)"
    ),
) -> None:
    """The retrainer: drift + quality monitors, triggers, challenger training, gates."""
    from services.retrainer.service import main
    from services.retrainer.settings import RetrainerSettings

    try:
        main(RetrainerSettings(**overrides(metrics_port=metrics_port)))
    except FraudError as exc:
        console.print(f"[red]retrainer cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc


def retrain_once(
    once: bool = typer.Option(True, "--once", help="train, judge and decide one challenger"),
    shuffle_labels: bool = typer.Option(
        False,
        "--shuffle-labels",
        help="gate drill: train on shuffled labels; the gates must reject it (never promoted)",
    ),
    idle_s: float = typer.Option(
        3.0, "--idle-s", help="read transactions.scored until idle this long"
    ),
) -> None:
    """Train a challenger now on the served rows and labels so far; gates decide."""
    from services.retrainer.service import build
    from services.retrainer.settings import RetrainerSettings

    if not once:
        raise typer.BadParameter("only --once is supported; use `fraudctl serve retrainer`")
    try:
        settings = RetrainerSettings(metrics_port=0)
        job, publisher = build(settings, client_id="fraudctl-retrain")
        consumer = job.consumer(group_id=f"retrain-once-{uuid.uuid4().hex[:8]}")
        try:
            rows = job.catch_up(consumer, idle_s=idle_s)
        finally:
            consumer.close()
        console.print(f"read {rows} served decisions from {settings.topics().scored}")
        trigger = "gate drill" if shuffle_labels else "manual"
        outcome = job.retrain_once(trigger, shuffle_labels=shuffle_labels)
        announce(publisher)
    except FraudError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if isinstance(outcome, str):
        console.print(f"[red]{outcome}[/red]")
        raise typer.Exit(1)
    table = Table(
        title=f"challenger {outcome.version}: " + ("promoted" if outcome.promoted else "rejected")
    )
    for column in ("gate", "result", "detail"):
        table.add_column(column)
    for result in outcome.gates.results:
        table.add_row(
            f"{result.number} {result.name}", "pass" if result.passed else "FAIL", result.detail
        )
    Console().print(table)
    if not outcome.promoted:
        raise typer.Exit(1)
