"""``fraudctl features ...``: training tables, the hot-path benchmark, profile materialisation."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import typer
from rich.console import Console

from features.bench import REPEATS, WARM_DAYS
from features.profiles import cli as profile_cli
from services.connections import redis_client
from services.settings import CommonSettings

app = typer.Typer(
    help="Feature store: materialize, build training tables, benchmarks.", no_args_is_help=True
)
console = Console()


@app.command("build-training")
def build_training(
    history: Path = typer.Option(..., "--history", help="simulator history folder"),
    out: Path = typer.Option(..., "--out", help="training table to write (.parquet)"),
    label_delay_days: int = typer.Option(7, "--label-delay-days", min=0, help="label delay"),
    lateness_s: int | None = typer.Option(
        None, "--allowed-lateness-s", min=0, help="card lateness (default: the definition's)"
    ),
    profiles: bool = typer.Option(True, "--profiles/--no-profiles", help="terminal risk columns"),
) -> None:
    """Build the point-in-time training table from a history (transactions + labels)."""
    from features.definitions import ALLOWED_LATENESS_S, FEATURE_SET_ID
    from features.offline import build_training_table
    from streams.simulator.history import read_history

    started = time.perf_counter()
    transactions, labels = read_history(history)
    loaded = time.perf_counter()
    table = build_training_table(
        transactions,
        labels,
        label_delay_days=label_delay_days,
        use_profiles=profiles,
        allowed_lateness_s=ALLOWED_LATENESS_S if lateness_s is None else lateness_s,
    )
    built = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    console.print(
        f"{len(table):,} rows x {table.shape[1]} columns ({FEATURE_SET_ID}) -> {out}  "
        f"read {loaded - started:.1f}s, build {built - loaded:.1f}s, "
        f"write {time.perf_counter() - built:.1f}s"
    )


@app.command("bench")
def bench(
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
    cards: int = typer.Option(5_000, "--cards", min=1),
    terminals: int = typer.Option(10_000, "--terminals", min=1),
    warm_days: int = typer.Option(
        WARM_DAYS, "--warm-days", min=1, help="history loaded before timing"
    ),
    repeats: int = typer.Option(REPEATS, "--repeats", min=5, help="timed batches per size"),
) -> None:
    """p50/p99 of update_and_read_batch (1, 100, 500 tx) on the real Redis; memory per card."""

    from features.bench import delete_prefix, run_feature_bench, summary_lines, write_report
    from services.allocator import tune_hot_path

    settings = CommonSettings()
    allocator = tune_hot_path(settings)  # as in the scorer, whose hot path this measures
    client = redis_client(settings)
    prefix = f"{settings.redis_prefix}:bench:{uuid.uuid4().hex[:8]}"
    try:
        report = run_feature_bench(
            client,
            prefix,
            cards=cards,
            terminals=terminals,
            warm_days=warm_days,
            repeats=repeats,
            allocator=allocator,
            # comparisons={"feast_sdk": ...}  <- the Feast SDK path hooks in here
        )
    finally:
        delete_prefix(client, prefix)
    for line in summary_lines(report):
        console.print(line)
    console.print(f"written {write_report(report, out_dir)}")


# --- profile store (features/profiles) ------------------------------------------------------
# ``fraudctl features materialize`` lives beside the Feast code in features/profiles/cli.py.
app.command("materialize")(profile_cli.materialize)
