"""``fraudctl model list | show VERSION | promote VERSION | rollback``: the model registry.

Every change is appended to the registry's audit log and, when the broker answers, sent
as a ``ModelEvent`` to ``model.events`` (otherwise: "no broker, event not published").
Errors are printed as one line and exit with code 2 - never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from models.registry import ModelRegistry
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.events import ModelEvent
from streams.kafka import broker_reachable, ensure_topics, producer_config
from streams.serde import encode

app = typer.Typer(help="Model registry: list, show, promote, rollback.", no_args_is_help=True)
console = Console()
RegistryOption = typer.Option(None, "--registry", help="registry folder [FRAUD_STATE_DIR/registry]")


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


class KafkaEventPublisher:
    """Sends ``ModelEvent`` to ``model.events``; checks the broker once, on first use."""

    def __init__(self, settings: CommonSettings, timeout_s: float = 1.5) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._producer: object | None = None
        self._checked = False
        self.unpublished = 0

    def __call__(self, event: ModelEvent) -> None:
        from streams.producer import AckedProducer

        bootstrap = self.settings.kafka()
        if not self._checked:
            self._checked = True
            if broker_reachable(bootstrap, self.timeout_s):
                topics = self.settings.topics()
                ensure_topics(bootstrap, topics, only=["model.events"], timeout_s=10)
                self._producer = AckedProducer(producer_config(bootstrap, client_id="fraudctl"))
        if not isinstance(self._producer, AckedProducer):
            if not self.unpublished:  # say it once per command
                console.print(f"[yellow]no broker at {bootstrap}, event not published[/yellow]")
            self.unpublished += 1
            return
        topic = self.settings.topics().model_events
        self._producer.produce(topic, encode(event), key=event.model_version)
        self._producer.wait_acked(timeout_s=10)
        console.print(f"published {event.kind} {event.model_version} to {topic}")


def open_registry(root: Path | None, *, publish: bool = True) -> ModelRegistry:
    settings = CommonSettings()
    publisher = KafkaEventPublisher(settings) if publish else None
    return ModelRegistry(root or settings.registry_dir, publish=publisher)


def _metric(metrics: dict[str, object], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.4f}" if isinstance(value, float) else "-"


@app.command("list")
def list_versions(registry: Path | None = RegistryOption) -> None:
    """All versions, oldest first, with their role and test metrics."""
    with cli_errors():
        store = open_registry(registry, publish=False)
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


@app.command("show")
def show(version: str, registry: Path | None = RegistryOption) -> None:
    """One version: files, feature set, metrics, thresholds and its model card."""
    with cli_errors():
        store = open_registry(registry, publish=False)
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
        }
        console.print_json(json.dumps(summary))
        console.print((entry.path / "model_card.md").read_text(), markup=False)


@app.command("promote")
def promote(
    version: str,
    reason: str = typer.Option("manual promotion", "--reason", help="why, for the audit log"),
    registry: Path | None = RegistryOption,
) -> None:
    """Make VERSION the champion (the scorers reload it)."""
    with cli_errors():
        store = open_registry(registry)
        previous = store.champion()
        store.promote(version, reason)
        was = previous.version if previous else "none"
        console.print(f"champion: [bold]{version}[/bold] (was {was})")


@app.command("rollback")
def rollback(
    reason: str = typer.Option("manual rollback", "--reason", help="why, for the audit log"),
    registry: Path | None = RegistryOption,
) -> None:
    """Make the previous champion the champion again."""
    with cli_errors():
        store = open_registry(registry)
        current = store.champion()
        restored = store.rollback(reason)
        was = current.version if current else "none"
        console.print(f"champion: [bold]{restored.version}[/bold] (rolled back from {was})")
