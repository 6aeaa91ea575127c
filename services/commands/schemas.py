"""``fraudctl schemas export``: write the events' JSON Schemas for non-Python producers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from streams.events import json_schemas

app = typer.Typer(help="Event contracts: export JSON Schemas.")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "streams" / "schemas"


def render_schemas() -> dict[str, str]:
    """File name -> JSON text for every event schema."""
    return {
        f"{name}.schema.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


@app.command("export")
def export(
    out_dir: Path = typer.Option(SCHEMA_DIR, "--out-dir", help="folder of the schema files"),
) -> None:
    """Write one ``<event>.schema.json`` per event type."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, text in render_schemas().items():
        (out_dir / filename).write_text(text)
    Console().print(f"wrote {len(render_schemas())} schemas to {out_dir}")
