"""``fraudctl serve scorer | api | cases | ...``: the long-running processes."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from services.commands.feedback import feedback
from services.commands.options import overrides, setting_option
from services.commands.retrainer import retrainer
from streams.errors import FraudError

app = typer.Typer(help="Run a service (settings from FRAUD_* environment variables).")
console = Console(stderr=True)


@app.command("scorer")
def scorer(
    instance_index: int | None = setting_option(
        "instance_index", "--instance-index", help="distinguishes processes on one host"
    ),
    metrics_port: int | None = setting_option(
        "metrics_port", "--metrics-port", help="Prometheus /metrics port, 0 = off (9101)"
    ),
) -> None:
    """The Kafka consumer-group scorer: decides every transaction on `transactions`.

    Replaces this process with ``python -m services.scorer`` (same PID, same signals), so
    the scorer holds only what scoring needs, not every command's imports.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    args = []
    if instance_index is not None:
        args += ["--instance-index", str(instance_index)]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    os.execv(sys.executable, [sys.executable, "-m", "services.scorer", *args])


@app.command("api")
def api(port: int | None = setting_option("port", "--port", help="HTTP port (8000)")) -> None:
    """The REST API: POST /v1/score, /v1/labels, GET /v1/models/current, /readyz, /metrics."""
    from services.api.main import main
    from services.api.settings import ApiSettings

    try:
        main(ApiSettings(**overrides(port=port)))
    except FraudError as exc:
        console.print(f"[red]api cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command("cases")
def cases(
    metrics_port: int | None = setting_option(
        "cases_metrics_port", "--metrics-port", help="Prometheus /metrics port, 0 = off"
    ),
) -> None:
    """The case ingester: fraud.review and the cards' decisions into the case store that
    the review console (served by the API) works on."""
    from services.cases.service import main
    from services.cases.settings import CaseIngestSettings

    try:
        main(CaseIngestSettings(**overrides(cases_metrics_port=metrics_port)))
    except FraudError as exc:
        console.print(f"[red]case ingester cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc


app.command("feedback")(feedback)
app.command("retrainer")(retrainer)
