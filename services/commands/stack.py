"""``fraudctl stack up | down | status | env``: the embedded broker and Redis."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from services.commands.options import JsonOption
from services.settings import CommonSettings
from services.stack import stack as stack_ops
from services.stack.stack import StackState
from streams.errors import FraudError

app = typer.Typer(help="Embedded stack: Kafka-protocol broker (noida-db) and Redis.")
console = Console()


def _table(state: StackState) -> Table:
    table = Table(title="fraud stack")
    for column in ("component", "address", "ready", "started by stack up", "pid"):
        table.add_column(column)
    for comp in (state.kafka, state.redis):
        table.add_row(
            comp.name,
            comp.address,
            "yes" if comp.ready else "NO",
            "yes" if comp.started_here else "no (external)",
            str(comp.pid or "-"),
        )
    return table


def _json(state: StackState) -> str:
    components = {
        comp.name: {
            "address": comp.address,
            "ready": comp.ready,
            "started_here": comp.started_here,
            "pid": comp.pid,
        }
        for comp in (state.kafka, state.redis)
    }
    return json.dumps({"components": components, "topics": state.topics, "env": state.env()})


StartMissingOption = typer.Option(
    False,
    "--start-missing",
    help="start an embedded broker / Redis at the configured addresses when they do not "
    "answer (tests, CI, a laptop); without it a configured one that does not answer is an "
    "error",
)


@app.command("up")
def up(as_json: bool = JsonOption, start_missing: bool = StartMissingOption) -> None:
    """Use the broker and Redis when they answer; start embedded ones only for the default
    addresses (or with --start-missing); create the topics."""
    settings = CommonSettings()
    try:
        state = stack_ops.up(settings, start_missing=True if start_missing else None)
    except FraudError as exc:
        console.print(f"[red]stack up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        print(_json(state))
        return
    console.print(_table(state))
    created = sum(1 for v in state.topics.values() if v == "created")
    console.print(f"topics: {len(state.topics)} ready ({created} created)")
    for key, value in state.env().items():
        console.print(f"export {key}={value}", highlight=False)


@app.command("status")
def status(as_json: bool = JsonOption) -> None:
    """Show what runs where; exit 1 when something is not ready."""
    state = stack_ops.status(CommonSettings())
    if as_json:
        print(_json(state))
    else:
        console.print(_table(state))
    if not (state.kafka.ready and state.redis.ready):
        raise typer.Exit(1)


@app.command("down")
def down() -> None:
    """Stop only what `stack up` started."""
    stopped = stack_ops.down(CommonSettings())
    console.print(
        f"stopped: {', '.join(stopped) if stopped else 'nothing (nothing was started here)'}"
    )


@app.command("env")
def env() -> None:
    """Print `export` lines for the running stack (use: eval "$(fraudctl stack env)")."""
    state = stack_ops.status(CommonSettings())
    for key, value in state.env().items():
        typer.echo(f"export {key}={value}")
