"""``fraudctl topics create | show``: the deployment's topics laid out as settings say.

Partitions, replication factor and ``min.insync.replicas`` come from
``FRAUD_TOPIC_LAYOUT``; an existing topic is never changed (adding partitions would move
cards between partitions, and with them the scorer that owns their state): ``show``
says where it differs from the settings.
"""

from __future__ import annotations

import dataclasses
import json

import typer
from rich.console import Console
from rich.table import Table

from services.commands.options import JsonOption
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.kafka import TopicState, describe_topics, ensure_topics, wait_for_broker

app = typer.Typer(help="Kafka topics: create them with the configured layout, show them.")
console = Console()


def _table(states: list[TopicState], created: dict[str, str]) -> Table:
    table = Table(title="topics")
    columns = ("topic", "partitions", "replicas", "min.insync", "status", "differs")
    for column in columns:
        table.add_column(column)
    for state in states:
        table.add_row(
            state.name,
            str(state.partitions),
            str(state.replication_factor),
            str(state.min_insync_replicas or "broker's"),
            created.get(state.name, "missing" if state.existing_partitions is None else "exists"),
            state.differs if state.existing_partitions is not None else "",
        )
    return table


def _show(settings: CommonSettings, created: dict[str, str], as_json: bool) -> None:
    states = describe_topics(settings.kafka(), settings.topics())
    if as_json:
        rows = [
            {**dataclasses.asdict(s), "status": created.get(s.name, ""), "differs": s.differs}
            for s in states
        ]
        print(json.dumps(rows))
        return
    console.print(_table(states, created))
    for state in states:
        if state.existing_partitions is not None and state.differs:
            console.print(
                f"[yellow]{state.name}[/yellow] differs from the settings: {state.differs}"
            )


@app.command("create")
def create(as_json: bool = JsonOption) -> None:
    """Create the topics that do not exist yet, laid out as FRAUD_TOPIC_LAYOUT says."""
    settings = CommonSettings()
    try:
        wait_for_broker(settings.kafka(), 10.0)
        created = ensure_topics(settings.kafka(), settings.topics())
    except FraudError as exc:
        console.print(f"[red]topics create failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _show(settings, created, as_json)


@app.command("show")
def show(as_json: bool = JsonOption) -> None:
    """Each topic as the settings lay it out and as the broker has it."""
    settings = CommonSettings()
    try:
        wait_for_broker(settings.kafka(), 10.0)
    except FraudError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    _show(settings, {}, as_json)
