"""Typer commands of the profile store, mounted by ``services/commands/features.py``.

Options read ``FRAUD_*`` environment variables directly (typer ``envvar``) because
``features`` must not import ``services``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from features.profiles.names import DEFAULT_DELAY_DAYS, REPO_DIR


def materialize(
    history: Path = typer.Option(..., "--history", help="simulator history folder"),
    repo: Path = typer.Option(REPO_DIR, "--repo", help="Feast repository folder"),
    end: datetime | None = typer.Option(None, "--end", help="materialise up to (UTC); default now"),
    redis_url: str = typer.Option(
        "redis://127.0.0.1:6379/0", "--redis-url", envvar="FRAUD_REDIS_URL", help="online store"
    ),
    project: str | None = typer.Option(None, "--project", help="override feature_store.yaml"),
    delay_days: int = typer.Option(
        DEFAULT_DELAY_DAYS, "--delay-days", envvar="FRAUD_LABEL_DELAY_DAYS", help="label delay"
    ),
    state_prefix: str = typer.Option(
        "fraud", "--state-prefix", envvar="FRAUD_REDIS_PREFIX", help="writer state key prefix"
    ),
    seed_writer: bool = typer.Option(True, "--seed-writer/--no-seed-writer"),
) -> None:
    """Write the terminal-risk source, feast apply, materialise, seed the label writer."""
    from features.profiles.materialize import materialize as run

    moment = None if end is None else (end if end.tzinfo else end.replace(tzinfo=UTC))
    report = run(
        history,
        redis_url=redis_url,
        repo_dir=repo,
        end=moment,
        project=project,
        delay_days=delay_days,
        state_prefix=state_prefix,
        seed_writer=seed_writer,
    )
    typer.echo(
        json.dumps(
            {
                "project": report.project,
                "end": report.end.isoformat(),
                "source": str(report.source_path),
                "source_rows": report.source_rows,
                "terminals": report.terminals,
                "labels_applied": report.labels_applied,
                "labels_deferred": report.labels_deferred,
                "seconds": report.seconds,
            },
            indent=2,
        )
    )


def bench_profiles(
    redis_url: str = typer.Option(
        "redis://127.0.0.1:6379/0", "--redis-url", envvar="FRAUD_REDIS_URL"
    ),
    keys: int = typer.Option(500, "--keys", help="entity keys per batch"),
    terminals: int = typer.Option(5000, "--terminals", help="terminals materialised"),
    rounds: int = typer.Option(300, "--rounds", help="direct-reader batches timed"),
    sdk_rounds: int = typer.Option(30, "--sdk-rounds", help="get_online_features batches timed"),
    out: Path = typer.Option(Path("bench/results"), "--out", help="folder of the JSON result"),
) -> None:
    """Direct Feast-layout reader vs get_online_features on the same keys (p50/p99)."""
    from features.profiles.bench import run_profile_bench

    result = run_profile_bench(
        redis_url, keys=keys, terminals=terminals, rounds=rounds, sdk_rounds=sdk_rounds
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"profiles-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    direct, sdk = result["direct_reader"], result["feast_sdk_get_online_features"]
    typer.echo(
        f"direct reader p50 {direct['p50_ms']:.2f} ms p99 {direct['p99_ms']:.2f} ms | "
        f"feast sdk p50 {sdk['p50_ms']:.2f} ms p99 {sdk['p99_ms']:.2f} ms | "
        f"speedup p50 {result['speedup_p50']:.1f}x | parity {result['parity']} -> {path}"
    )
