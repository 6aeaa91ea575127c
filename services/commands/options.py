"""Options every command spells the same way, so one name has one meaning everywhere.

* ``--json``: print machine-readable JSON instead of a table (every listing and status);
* ``--out FILE`` writes one file, ``--out-dir DIR`` a folder of files;
* ``--data``: transactions with labels (a simulator history folder, or a CSV / parquet
  file with ``--col ROLE=NAME``); ``--days``: a number of days;
* an option that overrides a setting shows its ``FRAUD_*`` variable in ``--help``
  (:func:`setting_option`); left out, the setting (environment, then default) applies.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from services.settings_names import env_name

JsonOption: Any = typer.Option(False, "--json", help="print JSON instead of a table")

DataOption: Any = typer.Option(
    ..., "--data", help="simulator history folder, or a CSV / parquet file of transactions"
)
LabelsOption: Any = typer.Option(
    None, "--labels", help="labels file (transaction_id + label), joined to --data on the id"
)
ColOption: Any = typer.Option(
    [], "--col", help="the column of a role: ROLE=NAME (e.g. event_time=TX_DATETIME)"
)


def setting_option(field: str, *flags: str, help: str, **kwargs: Any) -> Any:
    """An option overriding setting ``field``; its help names the variable."""
    return typer.Option(
        None, *flags, help=f"{help} [env: {env_name(field)}]", show_default=False, **kwargs
    )


def overrides(**values: object) -> dict[str, Any]:
    """The options given on the command line (None = not given: the setting applies)."""
    return {name: value for name, value in values.items() if value is not None}


def fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` and return the exit to raise (never a stack trace)."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)
