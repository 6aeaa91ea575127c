"""``fraudctl serve feedback``: the faust feedback processor (labels x served decisions)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from services.commands.options import setting_option
from streams.errors import FraudError

console = Console(stderr=True)


def feedback(
    training_dir: Path | None = setting_option(
        "training_dir", "--training-dir", help="training store root (<state_dir>/training)"
    ),
    risk_updates: bool | None = setting_option(
        "risk_updates", "--risk-updates/--no-risk-updates", help="terminal-risk updates in Redis"
    ),
    metrics_port: int | None = typer.Option(
        None, help="Prometheus /metrics port (default: FRAUD_METRICS_PORT or 0 = off)"
    ),
) -> None:
    """Join labels with served decisions: training rows (parquet) + terminal-risk updates."""
    from services.feedback.service import main
    from services.feedback.settings import FeedbackSettings

    overrides: dict[str, object] = {}
    if training_dir is not None:
        overrides["training_dir"] = training_dir
    if risk_updates is not None:
        overrides["risk_updates"] = risk_updates
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    try:
        main(FeedbackSettings(**overrides))  # type: ignore[arg-type]
    except FraudError as exc:
        console.print(f"[red]feedback processor cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc
