"""``fraudctl train``: train on the simulator's history or any CSV / parquet, register, promote.

Wiring only: loading and checks live in :mod:`models.data`, features in
:mod:`features.offline` (the same definitions the scorer serves), the protocol in
:mod:`models.pipeline`, versions in :mod:`models.registry`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from models.errors import DataError
from services.commands.model import (
    RegistryOption,
    announce,
    cli_errors,
    console,
    open_registry,
)
from services.commands.options import (
    ColOption,
    DataOption,
    LabelsOption,
    overrides,
    setting_option,
)
from services.settings import CommonSettings


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DataError(f"--test-start expects YYYY-MM-DD, got {value!r}") from None


def train(
    data: Path = DataOption,
    labels: Path | None = LabelsOption,
    col: list[str] = ColOption,
    train_days: int = typer.Option(56, "--train-days", min=1, help="days trained on"),
    label_delay_days: int | None = setting_option(
        "label_delay_days",
        "--label-delay-days",
        min=0,
        help="days after a transaction its label is known; also the gap before the test days",
    ),
    test_days: int = typer.Option(7, "--test-days", min=1, help="most recent days, held out"),
    test_start: str | None = typer.Option(None, "--test-start", help="YYYY-MM-DD"),
    seed: int = typer.Option(42, "--seed"),
    tune: int = typer.Option(0, "--tune", min=0, help="hyper-parameter trials (0: defaults)"),
    review_rate: float = typer.Option(0.005, "--review-rate", help="share of traffic to review"),
    promote: bool = typer.Option(False, "--promote", help="make the new version champion"),
    registry: str | None = RegistryOption,
) -> None:
    """Train a LightGBM model, export ONNX (parity-checked), register it."""
    # Imported here, not at module level: `fraudctl --help` should not load LightGBM/ONNX.
    from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
    from features.offline import build_training_table
    from models.data import load_training_data, parse_column_overrides
    from models.pipeline import TrainConfig, train_from_table

    with cli_errors():
        delay_days = CommonSettings(**overrides(label_delay_days=label_delay_days)).label_delay_days
        config = TrainConfig(
            train_days=train_days,
            delay_days=delay_days,
            test_days=test_days,
            test_start=_parse_day(test_start),
            seed=seed,
            tune_trials=tune,
            review_rate=review_rate,
        )
        columns = parse_column_overrides(col)
        store = open_registry(registry)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            step = progress.add_task("load", total=None)
            loaded = load_training_data(
                data, labels_path=labels, columns=columns, label_delay_days=delay_days
            )
            progress.update(step, total=1, completed=1)
            step = progress.add_task("features", total=None)
            table = build_training_table(
                loaded.transactions, loaded.labels, label_delay_days=delay_days
            )
            progress.update(step, total=1, completed=1)
            tasks: dict[str, int] = {}

            def on_progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = int(progress.add_task(name, total=total))
                progress.update(tasks[name], completed=done, total=total)  # type: ignore[arg-type]

            outcome = train_from_table(
                table,
                list(FEATURE_NAMES),
                FEATURE_SET_ID,
                config=config,
                source=loaded.source,
                fingerprint=loaded.fingerprint,
                warnings=loaded.warnings,
                progress=on_progress,
            )
        for warning in outcome.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        version = store.register(outcome.bundle)
        if promote:
            store.promote(version.version, "fraudctl train --promote")
        announce(store)
        _report(version.version, version.path, outcome.metrics, outcome.training_seconds, promote)


def _report(
    version: str, path: Path, metrics: dict[str, object], seconds: float, promoted: bool
) -> None:
    table = Table(title=f"model {version}" + (" (champion)" if promoted else ""))
    table.add_column("metric")
    table.add_column("test window", justify="right")
    at = metrics.get("at_review_threshold")
    rows = [
        ("ROC AUC", metrics.get("roc_auc")),
        ("average precision", metrics.get("average_precision")),
        ("card precision@100", metrics.get("card_precision_at_100")),
        ("precision @ review", at.get("precision") if isinstance(at, dict) else None),
        ("recall @ review", at.get("recall") if isinstance(at, dict) else None),
        ("ONNX max |diff|", metrics.get("onnx_max_abs_diff")),
        ("training seconds", seconds),
    ]
    for name, value in rows:
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"registered {version} at {path}")
