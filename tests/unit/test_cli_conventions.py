"""The command line speaks one language: an option name means the same in every command,
every listing prints JSON on request, overridden settings name their variable, and no
command exists twice."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from services.cli import PLUGIN_GROUP, app, mount_plugins

pytestmark = pytest.mark.unit

LISTINGS = {
    "model list",
    "model show",
    "stack up",
    "stack status",
    "keys list",
    "config show",
    "decisions tail",
    "dlq inspect",
    "dlq replay",
    "produce",
    "features materialize",
}
"""Commands that report something a script may want to read."""

MEANINGS: dict[str, type] = {
    "--out": Path,
    "--out-dir": Path,
    "--data": Path,
    "--labels": Path,
    "--days": int,
    "--label-delay-days": int,
    "--metrics-port": int,
    "--rate": float,
    "--json": bool,
}
RETIRED = {"--history", "--delay-days", "--dashboard-out", "--redis-url", "--out-file"}


def commands(group: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf command of typer's (vendored click) command tree, with its path."""
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():
            yield from commands(sub, f"{path} {name}".strip())
    else:
        yield path, group


def tree() -> list[tuple[str, Any]]:
    return list(commands(typer.main.get_command(app)))


def options(command: Any) -> dict[str, Any]:
    return {opt: p for p in command.params for opt in getattr(p, "opts", [])}


def annotation(param: Any) -> type:
    """An option's Python type, ``X | None`` read as ``X``."""
    hint = param.type_descriptor.annotation
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if isinstance(hint, types.UnionType) and len(args) == 1 else hint


def test_the_tools_are_mounted_from_entry_points_not_imported() -> None:
    names = {path.split()[0] for path, _ in tree()}
    assert {"bench", "loadtest"} <= names  # loadtest/ is installed in the dev environment
    assert sorted(mount_plugins(typer.Typer())) == ["bench", "loadtest"]
    assert PLUGIN_GROUP == "fraudctl.commands"


def test_an_option_name_has_one_meaning() -> None:
    seen: dict[str, list[str]] = {}
    for path, command in tree():
        for opt, param in options(command).items():
            assert opt not in RETIRED, f"fraudctl {path}: {opt} was renamed"
            if opt in MEANINGS:
                assert annotation(param) is MEANINGS[opt], f"fraudctl {path} {opt}"
            if opt == "--json":
                assert param.is_flag, path
            seen.setdefault(opt, []).append(path)
    assert len(seen["--json"]) >= len(LISTINGS)


def test_every_listing_prints_json_on_request() -> None:
    found = dict(tree())
    for path in LISTINGS:
        assert "--json" in options(found[path]), f"fraudctl {path} has no --json"


def test_options_that_override_a_setting_name_its_variable() -> None:
    found = dict(tree())
    expected = {
        ("serve scorer", "--metrics-port"): "FRAUD_METRICS_PORT",
        ("serve scorer", "--instance-index"): "FRAUD_INSTANCE_INDEX",
        ("serve api", "--port"): "FRAUD_PORT",
        ("serve retrainer", "--metrics-port"): "FRAUD_METRICS_PORT",
        ("serve feedback", "--training-dir"): "FRAUD_TRAINING_DIR",
        ("review", "--analyst"): "FRAUD_ANALYST",
        ("review", "--metrics-port"): "FRAUD_METRICS_PORT",
        ("train", "--label-delay-days"): "FRAUD_LABEL_DELAY_DAYS",
        ("features materialize", "--label-delay-days"): "FRAUD_LABEL_DELAY_DAYS",
        ("features materialize", "--project"): "FRAUD_FEAST_PROJECT",
    }
    for (path, opt), variable in expected.items():
        param: Any = options(found[path])[opt]
        assert variable in (param.help or ""), f"fraudctl {path} {opt}: {param.help}"
        assert param.default is None, f"fraudctl {path} {opt} hides the setting's default"


def test_no_command_exists_twice() -> None:
    callbacks: dict[object, str] = {}
    for path, command in tree():
        assert command.callback not in callbacks, f"{path} duplicates {callbacks[command.callback]}"
        callbacks[command.callback] = path
    assert "features bench" not in dict(tree())


def test_a_tool_that_is_not_installed_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime image has the entry points in its metadata but not loadtest/."""
    from importlib.metadata import EntryPoint

    import services.cli

    missing = EntryPoint(name="bench", value="no_such_package.cli:app", group=PLUGIN_GROUP)
    monkeypatch.setattr(services.cli, "entry_points", lambda group: [missing])
    assert mount_plugins(typer.Typer()) == []
