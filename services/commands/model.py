"""``fraudctl model list | show VERSION | promote VERSION | rollback``: the model registry.

Every change is appended to the registry's audit log, which is also its outbox: when the
broker answers, the command announces it on ``model.events`` before it exits; otherwise it
says so and the event waits there for the retrainer (or the next command) to announce.
Errors are printed as one line and exit with code 2 - never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from models.registry_open import Registry
from models.registry_open import open_registry as open_registry_at
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.kafka import broker_reachable

app = typer.Typer(help="Model registry: list, show, promote, rollback.", no_args_is_help=True)
console = Console()
RegistryOption = typer.Option(
    None,
    "--registry",
    help="registry folder or s3://bucket/prefix "
    "[default: FRAUD_REGISTRY_URL, else <FRAUD_STATE_DIR>/registry]",
)
JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")


@contextmanager
def cli_errors() -> Iterator[None]:
    """Typed errors become a red one-line message and exit code 2."""
    try:
        yield
    except FraudError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    except ValidationError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(code=2) from None


def open_registry(root: str | None) -> Registry:
    settings = CommonSettings()
    if not root:
        return settings.registry()
    return open_registry_at(
        root,
        endpoint_url=settings.s3_endpoint_url,
        cache_dir=settings.state_dir / "registry-cache",
    )


def announce(store: Registry, timeout_s: float = 1.5) -> None:
    """Announce what the change queued (and anything older still waiting)."""
    from services.retrainer.events import announce_registry

    settings = CommonSettings()
    bootstrap = settings.kafka()
    if not broker_reachable(bootstrap, timeout_s):
        waiting = len(store.announcements().backlog())
        console.print(
            f"[yellow]no broker at {bootstrap}: {waiting} event(s) wait in the registry's "
            "outbox and are announced when it answers[/yellow]"
        )
        return
    sent, waiting = announce_registry(settings, store, client_id="fraudctl")
    topic = settings.topics().model_events
    tail = f", {waiting} still wait in the outbox" if waiting else ""
    console.print(f"published {sent} event(s) to {topic}{tail}")


def _metric(metrics: dict[str, object], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.4f}" if isinstance(value, float) else "-"


@app.command("list")
def list_versions(registry: str | None = RegistryOption, as_json: bool = JsonOption) -> None:
    """All versions, oldest first, with their role and test metrics."""
    with cli_errors():
        store = open_registry(registry)
        if as_json:
            rows = [_summary_row(store, entry) for entry in store.list()]
            print(json.dumps(rows, indent=2))
            return
        table = Table(title=f"models in {store.root}")
        for column in ("version", "status", "created", "parent", "AUC", "AP", "CP@100"):
            table.add_column(column)
        for entry in store.list():
            metrics = entry.metrics()
            table.add_row(
                entry.version,
                store.status(entry.version),
                entry.created_at[:19],
                entry.parent or "-",
                _metric(metrics, "roc_auc"),
                _metric(metrics, "average_precision"),
                _metric(metrics, "card_precision_at_100"),
            )
        console.print(table)


def _summary_row(store: Registry, entry: Any) -> dict[str, object]:
    metrics = entry.metrics()
    return {
        "version": entry.version,
        "status": store.status(entry.version),
        "created_at": entry.created_at,
        "parent": entry.parent,
        "feature_set_id": entry.feature_set_id,
        "roc_auc": metrics.get("roc_auc"),
        "average_precision": metrics.get("average_precision"),
        "card_precision_at_100": metrics.get("card_precision_at_100"),
    }


@app.command("show")
def show(version: str, registry: str | None = RegistryOption, as_json: bool = JsonOption) -> None:
    """One version: files, feature set, metrics, thresholds and its model card."""
    with cli_errors():
        store = open_registry(registry)
        entry = store.get(version)
        store.verify(version)
        policy = entry.policy()
        summary = {
            "version": entry.version,
            "status": store.status(version),
            "path": str(entry.path),
            "parent": entry.parent,
            "fingerprint": entry.fingerprint,
            "feature_set_id": entry.feature_set_id,
            "review_threshold": policy.review_threshold,
            "decline_threshold": policy.decline_threshold,
            "policy_fitted_on": policy.basis.get("fitted_on", "validation window"),
        }
        if as_json:
            print(
                json.dumps(
                    {**summary, "policy_basis": policy.basis, "metrics": entry.metrics()},
                    indent=2,
                    default=str,
                )
            )
            return
        console.print_json(json.dumps(summary))
        console.print((entry.path / "model_card.md").read_text(), markup=False)


@app.command("promote")
def promote(
    version: str,
    reason: str = typer.Option("manual promotion", "--reason", help="why, for the audit log"),
    registry: str | None = RegistryOption,
) -> None:
    """Make VERSION the champion (the scorers reload it)."""
    with cli_errors():
        store = open_registry(registry)
        previous = store.champion()
        # refused (PromotionConflict) if another writer changes the champion meanwhile
        store.promote(version, reason, replaces=previous.version if previous else None)
        was = previous.version if previous else "none"
        console.print(f"champion: [bold]{version}[/bold] (was {was})")
        announce(store)


@app.command("rollback")
def rollback(
    reason: str = typer.Option("manual rollback", "--reason", help="why, for the audit log"),
    registry: str | None = RegistryOption,
) -> None:
    """Make the previous champion the champion again."""
    with cli_errors():
        store = open_registry(registry)
        current = store.champion()
        restored = store.rollback(reason)
        was = current.version if current else "none"
        console.print(f"champion: [bold]{restored.version}[/bold] (rolled back from {was})")
        announce(store)
