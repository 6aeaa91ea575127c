"""``fraudctl simulate`` - owned by the simulator work (placeholder until it lands)."""

from __future__ import annotations

import typer


def simulate() -> None:
    """Generate simulated card transactions (history parquet or live stream)."""
    raise typer.Exit(code=2)
