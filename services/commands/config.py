"""``fraudctl config show``: the effective settings of a service, secrets masked."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.table import Table

from services.commands.options import JsonOption, fail
from services.settings_names import NESTED, OTHER_VARIABLES, SETTINGS_CLASSES, env_name
from services.settings_names import settings_class as load_class
from streams.errors import FraudError

app = typer.Typer(help="Settings: what a service would run with.", no_args_is_help=True)
console = Console()
MASK = "****"
_SECRET_WORDS = ("password", "secret", "token", "credential")


def masked(value: Any, key: str = "") -> Any:
    """A value safe to print: secrets as ``****``, a URL's password masked."""
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        return _mask_url(text) if "://" in text else (MASK if text else "")
    if value is None:
        return None
    if any(word in key.lower() for word in _SECRET_WORDS):
        return MASK
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [masked(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def effective(service: str) -> list[dict[str, Any]]:
    """One row per setting: name, variable, value (masked), where the value came from."""
    cls = load_class(service)
    settings = cls()
    rows = []
    for field, info in cls.model_fields.items():
        variable = env_name(field)
        nested = any(name.startswith(variable + NESTED) for name in os.environ)
        rows.append(
            {
                "setting": field,
                "variable": variable,
                "value": masked(getattr(settings, field), field),
                "source": "environment" if variable in os.environ or nested else "default",
                "description": info.description or "",
            }
        )
    return rows


@app.command("show")
def show(
    service: str = typer.Option(
        "common", "--service", help=f"whose settings: {' | '.join(SETTINGS_CLASSES)}"
    ),
    as_json: bool = JsonOption,
) -> None:
    """The settings SERVICE would start with (environment, then defaults), secrets masked."""
    if service not in SETTINGS_CLASSES:
        raise fail(console, f"unknown service {service!r}; one of {', '.join(SETTINGS_CLASSES)}")
    try:
        rows = effective(service)
    except (FraudError, ValidationError) as exc:
        raise fail(console, str(exc)) from None
    tools = {name: os.environ[name] for name in OTHER_VARIABLES if name in os.environ}
    if as_json:
        values = {row["setting"]: row["value"] for row in rows}
        sources = {row["setting"]: row["source"] for row in rows}
        other = {k: MASK if "KEY" in k else v for k, v in tools.items()}
        print(
            json.dumps(
                {
                    "service": service,
                    "settings": values,
                    "sources": sources,
                    "other_variables": other,
                },
                indent=2,
                default=str,
            )
        )
        return
    table = Table(title=f"settings of {service}")
    table.add_column("variable", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    for row in rows:
        value = row["value"]
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        style = "bold" if row["source"] == "environment" else None
        table.add_row(row["variable"], text, row["source"], style=style)
    console.print(table)
