"""``fraudctl decisions tail``: watch the decisions on ``transactions.scored``.

Reads every partition without joining a consumer group, so watching never disturbs the
services that consume the topic.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from services.commands.options import fail
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.events import Decision
from streams.serde import Rejection, decision_decoder
from streams.topic_reader import ReadPlan, read_topic

app = typer.Typer(help="Decisions: what the scorer decided.", no_args_is_help=True)
console = Console(stderr=True)
out = Console(soft_wrap=True)
OUTCOMES = ("approve", "review", "decline")


@app.command("tail")
def tail(
    outcome: str | None = typer.Option(
        None, "--outcome", help="only this decision: approve | review | decline"
    ),
    card: str | None = typer.Option(None, "--card", help="only this card_id"),
    from_beginning: bool = typer.Option(
        False, "--from-beginning", help="start with the oldest decision kept (else new ones)"
    ),
    follow: bool = typer.Option(
        True, "--follow/--no-follow", help="keep watching (else stop at the current end)"
    ),
    count: int | None = typer.Option(None, "--count", min=1, help="stop after N decisions"),
    idle_exit_s: float | None = typer.Option(
        None, "--idle-exit-s", min=0.1, help="stop after this many seconds without one"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="one decision per line, as JSON exactly as on the topic"
    ),
) -> None:
    """Print decisions as they are written (Ctrl-C stops)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise fail(console, f"--outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if not from_beginning and not follow:
        raise fail(console, "--no-follow needs --from-beginning (there is nothing to show)")
    settings = CommonSettings()
    topic = settings.topics().scored
    plan = ReadPlan(from_beginning=from_beginning, follow=follow, idle_s=idle_exit_s)
    shown = unreadable = 0
    try:
        for message in read_topic(settings.kafka(), topic, plan, client_id="fraudctl-tail"):
            value = message.value() or b""
            decision = decision_decoder.decode(value)
            if isinstance(decision, Rejection):
                unreadable += 1
                continue
            if (outcome and decision.decision != outcome) or (card and decision.card_id != card):
                continue
            if as_json:
                sys.stdout.write(value.decode() + "\n")
                sys.stdout.flush()
            else:
                out.print(line(decision), highlight=False, markup=False)
            shown += 1
            if count is not None and shown >= count:
                break
    except FraudError as exc:
        raise fail(console, str(exc)) from None
    except KeyboardInterrupt:
        pass
    if unreadable:
        console.print(f"[yellow]{unreadable} record(s) on {topic} were not decisions[/yellow]")


def line(decision: Decision) -> str:
    """One decision on one line: when, what, how risky, why."""
    reasons = ", ".join(f"{r.feature}={r.value:g}" for r in decision.reasons[:3])
    latency = "" if decision.latency_ms is None else f" {decision.latency_ms:.0f}ms"
    return (
        f"{decision.event_time:%Y-%m-%d %H:%M:%S} {decision.decision:<7} "
        f"score {decision.score:.3f} {decision.transaction_id} card {decision.card_id} "
        f"terminal {decision.terminal_id} amount {decision.amount:.2f} "
        f"model {decision.model_version}{latency}" + (f" | {reasons}" if reasons else "")
    )
