"""``fraudctl train`` - owned by the models work (placeholder until it lands)."""

from __future__ import annotations

import typer


def train() -> None:
    """Train a LightGBM model, export ONNX, register it."""
    raise typer.Exit(code=2)
