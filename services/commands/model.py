"""``fraudctl model ...`` - owned by the models work (placeholder until it lands)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Model registry: list, show, promote, rollback.")
