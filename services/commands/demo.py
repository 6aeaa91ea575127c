"""``fraudctl demo``: the whole system on the embedded stack, with a live dashboard."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from streams.errors import FraudError


def demo(
    minutes: float = typer.Option(
        8.0, min=1.0, help="time limit of the live part (setup takes 1-2 more)"
    ),
    rate: float = typer.Option(100.0, min=10.0, max=2000.0, help="live transactions per second"),
    state_dir: Path = typer.Option(Path("state/demo"), help="broker data, runs, logs"),
    pattern_after: float | None = typer.Option(
        None, help="seconds of live traffic before card testing starts (default: min(60, run/5))"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="also write the last dashboard frame as text to this file"
    ),
) -> None:
    """Stack, history, champion, scorers, API, feedback, retrainer, reviewers, live traffic.

    Midway card testing (a fraud pattern the champion never saw) switches on; watch drift
    -> challenger -> gates -> promotion -> recovery. Ctrl-C stops everything it started.
    """
    from services.demo.children import free_ports
    from services.demo.plan import make_plan
    from services.demo.runner import run_demo

    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the three dashboard tables
        console = Console(width=150)
    plan = make_plan(
        minutes=minutes,
        rate=rate,
        state_dir=state_dir,
        cores=os.cpu_count() or 1,
        ports=free_ports(4),
        switch_after_s=pattern_after,
    )
    try:
        run_demo(plan, console, dashboard_out=out)
    except FraudError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(2) from exc
