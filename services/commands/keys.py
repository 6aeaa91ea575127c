"""``fraudctl keys create | list | revoke``: the API's keys, stored as salted hashes."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from services.api.keys import SCOPE_HELP, KeyFile
from services.api.settings import ApiSettings
from streams.errors import FraudError

app = typer.Typer(
    help="API keys (file: FRAUD_API_KEYS_FILE, default <FRAUD_STATE_DIR>/api-keys.json). "
    "Scopes: " + "; ".join(f"{k}: {v}" for k, v in SCOPE_HELP.items())
)
console = Console()


def _file() -> KeyFile:
    return KeyFile(ApiSettings().keys_path)


@app.command("create")
def create(
    name: str = typer.Option(..., help="the identity the key stands for: an analyst or a system"),
    scopes: str = typer.Option(..., help="e.g. score+read, labels, chargeback, metrics, admin"),
    rate: float | None = typer.Option(
        None, help="requests per second for this key (default FRAUD_RATE_LIMIT_PER_S)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the key as JSON"),
) -> None:
    """Create a key and print its secret once: only its salted hash is stored."""
    try:
        secret, stored = _file().create(name, scopes, rate)
    except FraudError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({"key": secret, "key_id": stored.key_id, "name": stored.name}))
        return
    console.print(f"key for [bold]{stored.name}[/bold] ({'+'.join(stored.scopes)}):")
    print(secret)
    console.print("[dim]shown once; it cannot be recovered, only revoked and replaced[/dim]")


@app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Keys with their identity, scopes and state (never a secret: none is stored)."""
    keys = _file().read()
    if as_json:
        rows = [{k: v for k, v in vars(key).items() if k not in ("salt", "digest")} for key in keys]
        print(json.dumps(rows, default=list))
        return
    table = Table(title=str(ApiSettings().keys_path))
    for column in ("key id", "name", "scopes", "rate/s", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.key_id,
            key.name,
            "+".join(key.scopes),
            "-" if key.rate_per_s is None else f"{key.rate_per_s:g}",
            key.created_at,
            key.revoked_at or "-",
        )
    console.print(table)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="the key id `keys list` shows")) -> None:
    """Revoke a key: running APIs refuse it within a second."""
    if not _file().revoke(key_id):
        console.print(f"[red]no active key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
