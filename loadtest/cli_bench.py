"""``fraudctl bench ...``: the benchmarks (numbers printed and written to bench/results/).

* ``scorer`` - backlog throughput, naive baseline ratio, paced e2e latency beside the echo
  floor, ramp to the knee, REST p99 (:mod:`loadtest.bench_scorer`);
* ``report`` - every bench in one run + markdown summary + plot (what ``make bench`` runs);
* ``features`` / ``profiles`` / ``model`` - the library benches, mounted from their areas.

The harness lives in ``loadtest/``, which services never import: this module imports it
lazily inside the command functions only (a CLI entry, not a service).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from services.commands.features import bench as features_bench
from services.commands.model import cli_errors
from services.settings import CommonSettings

if TYPE_CHECKING:
    from loadtest.latency import ReaderMode

app = typer.Typer(help="Benchmarks: numbers printed and written to bench/results/.")
console = Console()


def _log(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _reader_mode(value: str) -> ReaderMode:
    if value == "append-time":
        return "append-time"
    if value == "live":
        return "live"
    raise typer.BadParameter(f"--reader must be append-time or live, not {value!r}")


@app.command("scorer")
def scorer(
    backlog: int = typer.Option(200_000, "--backlog", min=100, help="backlog transactions"),
    rate: float = typer.Option(2_000.0, "--rate", min=1.0, help="paced rate (tx/s)"),
    duration: float = typer.Option(30.0, "--duration", min=1.0, help="paced run (s)"),
    ramp: str = typer.Option(
        "500,1000,2000,4000,6000,8000,12000", "--ramp", help="step rates (tx/s), comma-separated"
    ),
    ramp_step: float = typer.Option(10.0, "--ramp-step", min=1.0, help="seconds per step"),
    naive: int = typer.Option(1_000, "--naive", min=10, help="naive baseline transactions"),
    rest_rps: float = typer.Option(200.0, "--rest-rps", min=1.0, help="REST request rate"),
    rest_duration: float = typer.Option(20.0, "--rest-duration", min=1.0),
    reader: str = typer.Option(
        "append-time",
        "--reader",
        help="when a decision is readable: append-time (the broker's, reader idle during "
        "a step) or live (a consumer reading during the step)",
    ),
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", help="use this broker (default: start an own noida-db)"
    ),
    quick: bool = typer.Option(False, "--quick", help="a smoke run with small numbers"),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """Scorer throughput, latency vs the echo floor, knee, naive ratio, REST p99."""
    from loadtest.bench_scorer import ScorerBenchConfig, knee_reach_line, run_scorer_bench

    rates = tuple(float(r) for r in ramp.split(",") if r.strip())
    config = ScorerBenchConfig(
        backlog=backlog,
        rate=rate,
        duration_s=duration,
        ramp_rates=rates,
        ramp_step_s=ramp_step,
        naive=naive,
        rest_rps=rest_rps,
        rest_duration_s=rest_duration,
        reader=_reader_mode(reader),
        bootstrap=bootstrap,
    )
    if quick:
        config = ScorerBenchConfig.quick(bootstrap=bootstrap, reader=config.reader)
    settings = CommonSettings()
    with cli_errors():
        result = run_scorer_bench(
            config,
            redis_url=settings.redis_url.get_secret_value(),
            state_dir=settings.state_dir / "bench",
            log=_log,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"scorer-{datetime.now(UTC).date().isoformat()}{'-quick' if quick else ''}"
    path = out_dir / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for name, target in result["targets"].items():
        if isinstance(target, dict):
            bound = f" ({target['bound']} bound)" if target.get("bound") else ""
            _log(f"{name:<36} {target['value']!s:<24} met={target['met']}{bound}")
    if result.get("knee_reach"):
        _log(knee_reach_line(result["knee_reach"]))
    _log(f"written {path}")


@app.command("report")
def report(
    quick: bool = typer.Option(False, "--quick", help="a smoke run: small numbers, no model"),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir"),
    only: str | None = typer.Option(
        None, "--only", help="comma-separated subset of features,profiles,model,scorer"
    ),
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", help="use this broker (default: start an own noida-db)"
    ),
) -> None:
    """Every benchmark in one run: <date>.json, <date>.md and a latency-vs-throughput PNG."""
    from dataclasses import replace

    from loadtest.bench_report import ReportConfig, run_report

    config = ReportConfig.quick_run(out_dir) if quick else ReportConfig(out_dir=out_dir)
    config = replace(config, scorer=replace(config.scorer, bootstrap=bootstrap))
    if only:
        config = replace(config, benches=tuple(b.strip() for b in only.split(",") if b.strip()))
    settings = CommonSettings()
    with cli_errors():
        result = run_report(
            config,
            redis_url=settings.redis_url.get_secret_value(),
            state_dir=settings.state_dir / "bench",
            log=_log,
        )
    for name, path in result["files"].items():
        _log(f"{name}: {path}")
    failed = [name for name, bench in result["benches"].items() if "error" in bench]
    if failed:
        _log(f"benches that failed: {', '.join(failed)}")
        raise typer.Exit(1)


@app.command("model")
def model(
    data: Path = typer.Option(..., "--data", help="simulator history folder, or a CSV / parquet"),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir"),
) -> None:
    """The full model against the handbook's baseline features, same data, same run."""
    from models.bench import format_report, run_model_bench

    with cli_errors():
        result = run_model_bench(data, out_dir=out_dir)
    _log(format_report(result))
    _log(f"written {result['written_to']}")


def _mount_library_benches() -> None:
    from features.profiles.cli import bench_profiles

    app.command("features")(features_bench)
    app.command("profiles")(bench_profiles)


_mount_library_benches()


if __name__ == "__main__":  # scripts/bench.sh: works before `fraudctl bench` is mounted
    app()
