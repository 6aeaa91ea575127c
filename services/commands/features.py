"""``fraudctl features ...``: profile materialisation and point-in-time training tables.

Both read the same input as ``fraudctl train`` (``--data`` with ``--labels`` and ``--col``,
the same column roles, the same label delay), so the profiles served online are computed
from the transactions and labels the model was trained on.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from services.commands.model import cli_errors
from services.commands.options import (
    ColOption,
    DataOption,
    JsonOption,
    LabelsOption,
    overrides,
    setting_option,
)
from services.settings import CommonSettings

app = typer.Typer(
    help="Feature store: materialise terminal-risk profiles, build training tables.",
    no_args_is_help=True,
)
console = Console()

LabelDelayOption = setting_option(
    "label_delay_days",
    "--label-delay-days",
    min=0,
    help="days after a transaction its label becomes known (as `train` was given)",
)


def feast_repo(folder: Path, shipped: Path) -> Path:
    """``folder`` as a Feast repository: the shipped definitions are copied in when it has
    none, so the source table and Feast's registry are written under the state folder
    (the installed package may be read-only), never next to the code."""
    if not (folder / "feature_store.yaml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for item in shipped.iterdir():
            if item.is_file() and (item.suffix in (".yaml", ".py") or item.name == ".feastignore"):
                shutil.copy2(item, folder / item.name)
    return folder


@app.command("build-training")
def build_training(
    data: Path = DataOption,
    labels: Path | None = LabelsOption,
    col: list[str] = ColOption,
    out: Path = typer.Option(..., "--out", help="training table to write (.parquet)"),
    label_delay_days: int | None = LabelDelayOption,
    lateness_s: int | None = typer.Option(
        None, "--allowed-lateness-s", min=0, help="card lateness (default: the definition's)"
    ),
    profiles: bool = typer.Option(True, "--profiles/--no-profiles", help="terminal risk columns"),
) -> None:
    """Build the point-in-time training table (keys, is_fraud, the 44 features)."""
    from features.definitions import ALLOWED_LATENESS_S, FEATURE_SET_ID
    from features.offline import build_training_table
    from models.data import load_training_data, parse_column_overrides

    with cli_errors():
        settings = CommonSettings(**overrides(label_delay_days=label_delay_days))
        delay = settings.label_delay_days
        started = time.perf_counter()
        loaded = load_training_data(
            data, labels_path=labels, columns=parse_column_overrides(col), label_delay_days=delay
        )
        read = time.perf_counter()
        table = build_training_table(
            loaded.transactions,
            loaded.labels,
            label_delay_days=delay,
            use_profiles=profiles,
            allowed_lateness_s=ALLOWED_LATENESS_S if lateness_s is None else lateness_s,
        )
        built = time.perf_counter()
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out, index=False)
    console.print(
        f"{len(table):,} rows x {table.shape[1]} columns ({FEATURE_SET_ID}) -> {out}  "
        f"read {read - started:.1f}s, build {built - read:.1f}s, "
        f"write {time.perf_counter() - built:.1f}s"
    )


@app.command("materialize")
def materialize(
    data: Path = DataOption,
    labels: Path | None = LabelsOption,
    col: list[str] = ColOption,
    end: datetime | None = typer.Option(
        None, "--end", help="materialise as of this time (UTC; default now)"
    ),
    label_delay_days: int | None = LabelDelayOption,
    project: str | None = setting_option(
        "feast_project", "--project", help="Feast project (the namespace of profile keys)"
    ),
    repo: Path | None = typer.Option(
        None,
        "--repo",
        help="Feast repository folder, made from the shipped one (features/repo) when it has "
        "no feature_store.yaml [default: <FRAUD_STATE_DIR>/feast]",
    ),
    seed_writer: bool = typer.Option(
        True, "--seed-writer/--no-seed-writer", help="seed the label writer's state"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compute terminal-risk profiles from --data and load them into the online store.

    Run it after `train` on the same input and again every day (profiles are written per
    UTC day; the scorer serves defaults for a profile older than two days).
    """
    from features.profiles.materialize import materialize_frames
    from features.profiles.names import REPO_DIR
    from models.data import load_training_data, parse_column_overrides

    with cli_errors():
        settings = CommonSettings(
            **overrides(label_delay_days=label_delay_days, feast_project=project)
        )
        loaded = load_training_data(
            data,
            labels_path=labels,
            columns=parse_column_overrides(col),
            label_delay_days=settings.label_delay_days,
        )
        moment = None if end is None else (end if end.tzinfo else end.replace(tzinfo=UTC))
        report = materialize_frames(
            loaded.transactions,
            loaded.labels,
            redis_url=settings.redis_url.get_secret_value(),
            repo_dir=feast_repo(repo or settings.state_dir / "feast", REPO_DIR),
            end=moment,
            project=settings.feast_project,
            delay_days=settings.label_delay_days,
            state_prefix=settings.redis_prefix,
            seed_writer=seed_writer,
            redis_options=settings.redis_options(),
        )
    result = {
        "project": report.project,
        "end": report.end.isoformat(),
        "source": str(report.source_path),
        "source_rows": report.source_rows,
        "terminals": report.terminals,
        "labels_applied": report.labels_applied,
        "labels_deferred": report.labels_deferred,
        "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console.print(
        f"{result['terminals']:,} terminals materialised as of {result['end']} into project "
        f"{result['project']} ({result['source_rows']:,} source rows, "
        f"{result['labels_applied']:,} fraud labels applied)",
        highlight=False,
    )
