"""``fraudctl review``: work ``fraud.review`` as an analyst, or label automatically."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.console import Console

from services.commands.options import setting_option
from streams.errors import FraudError

console = Console(stderr=True)


def review(
    auto: bool = typer.Option(False, "--auto", help="oracle: label from simulator ground truth"),
    delay_s: float = typer.Option(0.0, help="--auto/--chargebacks: seconds before labelling"),
    error_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="--auto: share of wrong labels"),
    from_file: Path | None = typer.Option(
        None,
        "--from-file",
        help="import labels (CSV/parquet: transaction_id,label[,labelled_at,analyst])",
    ),
    source: str = typer.Option("chargeback", help="--from-file: analyst|chargeback|oracle"),
    chargebacks: bool = typer.Option(
        False, "--chargebacks", help="label missed fraud (approved, truly fraud) from scored"
    ),
    analyst: str | None = setting_option(
        "analyst", "--analyst", help="analyst id written on labels (default: the login name)"
    ),
    case_store: bool = typer.Option(
        False,
        "--case-store",
        help="--auto: work the case store's queue (claims, verdicts, the label outbox) "
        "instead of reading fraud.review",
    ),
    idle_exit_s: float | None = typer.Option(
        None, help="--auto/--chargebacks: stop after this many idle seconds"
    ),
    metrics_port: int | None = setting_option(
        "metrics_port", "--metrics-port", help="Prometheus /metrics port, 0 = off (0)"
    ),
) -> None:
    """Label sources: --from-file, --chargebacks, --auto (demo oracle); without one, the
    retired line prompt (analysts use the review console: docs/review-console.md)."""
    from services.review import service
    from services.review.settings import ReviewSettings

    try:
        overrides: dict[str, object] = {}
        if analyst:
            overrides["analyst"] = analyst
        if metrics_port is not None:
            overrides["metrics_port"] = metrics_port
        settings = ReviewSettings(**overrides)  # type: ignore[arg-type]
        if from_file is not None:
            if source not in ("analyst", "chargeback", "oracle"):
                raise typer.BadParameter(f"unknown source {source!r}")
            label_source: Literal["analyst", "chargeback", "oracle"] = source  # type: ignore[assignment]
            sent, rejected = service.run_file(settings, from_file, label_source)
            console.print(f"labels sent: {sent}, rejected rows: {rejected}")
        elif chargebacks:
            sent = service.run_chargebacks(settings, delay_s=delay_s, idle_exit_s=idle_exit_s)
            console.print(f"chargebacks sent: {sent}")
        elif auto and case_store:
            stats = service.run_case_oracle(
                settings, delay_s=delay_s, error_rate=error_rate, idle_exit_s=idle_exit_s
            )
            console.print(f"oracle: {stats}")
        elif auto:
            oracle = service.run_oracle(
                settings, delay_s=delay_s, error_rate=error_rate, idle_exit_s=idle_exit_s
            )
            console.print(f"oracle: {oracle.stats}")
        else:
            console.print(
                "[yellow]the line prompt is retired for analysts' work:[/yellow] it reads "
                "fraud.review without the case store's claims, SLA and audit. Use the review "
                "console (`fraudctl serve api` + `fraudctl serve cases`, then /console)."
            )
            verdicts = service.run_interactive(settings, Console())
            console.print(f"verdicts: {verdicts}")
    except FraudError as exc:
        console.print(f"[red]review failed:[/red] {exc}")
        raise typer.Exit(2) from exc
