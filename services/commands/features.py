"""``fraudctl features ...`` - owned by the features work (placeholder until it lands)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Feature store: materialize, build training tables, benchmarks.")
