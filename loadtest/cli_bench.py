"""``fraudctl bench ...``: the benchmarks (numbers printed and written to bench/results/).

* ``scorer`` - backlog throughput, naive baseline ratio, paced e2e latency beside the echo
  floor, ramp to the knee, REST p99 (:mod:`loadtest.bench_scorer`);
* ``report`` - every bench in one run + markdown summary + plot (what ``make bench`` runs);
* ``features`` / ``profiles`` / ``model`` - the library benches.

A tool, not part of the product: ``fraudctl`` mounts this group through the
``fraudctl.commands`` entry point where ``loadtest/`` is installed. The harness modules are
imported inside the command functions, so ``fraudctl --help`` stays quick.
"""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from services.commands.model import cli_errors
from services.connections import redis_client
from services.settings import CommonSettings

if TYPE_CHECKING:
    from loadtest.latency import ReaderMode

PHASES_HELP = ("backlog", "naive", "latency", "mixes", "rest", "cards")
"""The scorer bench's phases (``loadtest.bench_scorer.PHASES``, not imported here so that
``fraudctl --help`` stays quick)."""

app = typer.Typer(help="Benchmarks: numbers printed and written to bench/results/.")
console = Console()


def exit_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI runner, ``kill``) ends a bench like Ctrl-C does: through
    its ``finally`` blocks, which stop the broker, scorers and generators it started. By
    default Python dies at once and leaves them running - a broker spinning a core under
    the next measurement."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


@app.callback()
def _bench_group() -> None:
    exit_on_sigterm()


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
    ramp: str | None = typer.Option(
        None,
        "--ramp",
        help="step rates (tx/s), comma-separated [the bench's: 500 up to 32,000, every "
        "2,000 from 4,000 to 16,000; the scorer's ramp ends where it misses the SLA]",
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
    mixes: str = typer.Option(
        "normal,attack,cold,schema",
        "--mixes",
        help="traffic mixes of the paced run, comma-separated (loadtest/mixes.py)",
    ),
    cards: str | None = typer.Option(
        None,
        "--cards",
        help="cards phase: active cards of each world, comma-separated (default "
        "5000,1000000; --quick 2000)",
    ),
    cards_backlog: int | None = typer.Option(
        None, "--cards-backlog", min=100, help="cards phase: backlog transactions per world"
    ),
    phases: str = typer.Option(
        ",".join(PHASES_HELP),
        "--phases",
        help="phases to run, comma-separated: backlog, naive, latency, mixes, rest, cards",
    ),
    quick: bool = typer.Option(False, "--quick", help="a smoke run with small numbers"),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """Scorer throughput, latency vs the echo floor per traffic mix, knee, naive ratio,
    REST p99, and the backlog at millions of active cards."""
    from loadtest.bench_scorer import (
        PHASES,
        ScorerBenchConfig,
        knee_reach_line,
        run_scorer_bench,
    )
    from loadtest.mixes import parse_mixes

    try:
        chosen = parse_mixes(mixes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mixes") from None
    chosen_phases = tuple(p.strip() for p in phases.split(",") if p.strip())
    unknown = [p for p in chosen_phases if p not in PHASES]
    if unknown:
        raise typer.BadParameter(f"unknown phase {unknown[0]!r}", param_hint="--phases")
    extra: dict[str, Any] = {"phases": chosen_phases}
    if ramp is not None:
        extra["ramp_rates"] = tuple(float(r) for r in ramp.split(",") if r.strip())
    if cards is not None:
        try:
            extra["card_counts"] = tuple(int(c.replace("_", "")) for c in cards.split(",") if c)
        except ValueError:
            raise typer.BadParameter(
                "whole numbers, comma-separated", param_hint="--cards"
            ) from None
    if cards_backlog is not None:
        extra["cards_backlog"] = cards_backlog
    config = ScorerBenchConfig(
        backlog=backlog,
        rate=rate,
        duration_s=duration,
        ramp_step_s=ramp_step,
        naive=naive,
        rest_rps=rest_rps,
        rest_duration_s=rest_duration,
        reader=_reader_mode(reader),
        bootstrap=bootstrap,
        mixes=chosen,
        **extra,
    )
    if quick:
        config = ScorerBenchConfig.quick(
            bootstrap=bootstrap, reader=config.reader, mixes=chosen, **extra
        )
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


@app.command("features")
def features(
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
    cards: int = typer.Option(5_000, "--cards", min=1),
    terminals: int = typer.Option(10_000, "--terminals", min=1),
    warm_days: int | None = typer.Option(
        None, "--warm-days", min=1, help="days of history loaded before timing"
    ),
    repeats: int | None = typer.Option(None, "--repeats", min=5, help="timed batches per size"),
    warm: str = typer.Option(
        "replay",
        "--warm",
        help="how the history gets into Redis: replay (through the batch script, as a "
        "running scorer leaves it) or seed (written straight in: minutes for millions of "
        "cards)",
    ),
) -> None:
    """p50/p99 of update_and_read_batch (1, 100, 500 tx) on the real Redis; memory per card.

    ``--cards`` is the synthetic world's card count (each card with 8 home terminals
    among ``--terminals``, 2 transactions a day); with millions of cards use
    ``--warm seed``."""
    if warm not in ("replay", "seed"):
        raise typer.BadParameter("replay or seed", param_hint="--warm")
    from features.bench import (
        REPEATS,
        WARM_DAYS,
        delete_prefix,
        run_feature_bench,
        summary_lines,
        write_report,
    )
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
            warm_days=warm_days or WARM_DAYS,
            repeats=repeats or REPEATS,
            allocator=allocator,
            warm="seed" if warm == "seed" else "replay",
            card_writes=settings.card_writes,  # FRAUD_CARD_WRITES, as the scorer's
        )
    finally:
        delete_prefix(client, prefix)
    for line in summary_lines(report):
        _log(line)
    _log(f"written {write_report(report, out_dir)}")


@app.command("profiles")
def profiles(
    keys: int = typer.Option(500, "--keys", help="entity keys per batch"),
    terminals: int = typer.Option(5000, "--terminals", help="terminals materialised"),
    rounds: int = typer.Option(300, "--rounds", help="direct-reader batches timed"),
    sdk_rounds: int = typer.Option(30, "--sdk-rounds", help="get_online_features batches timed"),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """Direct Feast-layout reader vs get_online_features on the same keys (p50/p99)."""
    from features.profiles.bench import run_profile_bench

    redis_url = CommonSettings().redis_url.get_secret_value()
    result = run_profile_bench(
        redis_url, keys=keys, terminals=terminals, rounds=rounds, sdk_rounds=sdk_rounds
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"profiles-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    direct, sdk = result["direct_reader"], result["feast_sdk_get_online_features"]
    _log(
        f"direct reader p50 {direct['p50_ms']:.2f} ms p99 {direct['p99_ms']:.2f} ms | "
        f"feast sdk p50 {sdk['p50_ms']:.2f} ms p99 {sdk['p99_ms']:.2f} ms | "
        f"speedup p50 {result['speedup_p50']:.1f}x | parity {result['parity']} -> {path}"
    )


@app.command("cases")
def cases(
    open_cases: int = typer.Option(200, "--cases", min=1, help="open cases kept in the queue"),
    analysts: int = typer.Option(5, "--analysts", min=1, help="simulated analysts"),
    duration: float = typer.Option(60.0, "--duration", min=1.0, help="seconds"),
    db_url: str | None = typer.Option(
        None, "--db-url", help="case store URL (default: SQLite in a temporary folder)"
    ),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """The review console's load check: analysts claiming and resolving cases over REST;
    no case resolved twice, none lost, the queue page's p50/p99."""
    import tempfile

    from loadtest.bench_cases import run_case_bench

    with tempfile.TemporaryDirectory(prefix="bench-cases-") as work:
        result = run_case_bench(
            Path(work),
            cases=open_cases,
            analysts=analysts,
            duration_s=duration,
            db_url=db_url,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cases-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    _log(
        f"{result['analysts']} analysts, {result['duration_s']} s, {result['backend']}: "
        f"{result['verdicts_answered']} verdicts ({result['verdicts_per_s']}/s), "
        f"{result['claims_refused']} claims refused, resolved twice {result['resolved_twice']}, "
        f"lost {result['lost']}, errors {result['errors']} | queue page p50 "
        f"{result['queue_page_p50_ms']} ms p99 {result['queue_page_p99_ms']} ms | "
        f"ok {result['ok']} -> {path}"
    )
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("objstore")
def objstore(
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="an S3-compatible endpoint (default: moto's server, started)"
    ),
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="the followers' poll interval, s"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="promotions measured"),
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", help="a broker: also measure promotions heard on model.events"
    ),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """The registry and training store on S3: register, promote, a poll, the promotion
    latency other processes see, promotion races, training-store appends and reads."""
    import tempfile

    from loadtest.bench_objstore import run_objstore_bench

    with tempfile.TemporaryDirectory(prefix="bench-objstore-") as work:
        result = run_objstore_bench(
            Path(work), endpoint=endpoint, bootstrap=bootstrap, poll_s=poll, rounds=rounds
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"objstore-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    seen = result["promotion_seen_by_other_process"]
    _log(
        f"{result['store']}: register p50 {result['register']['p50_ms']} ms, promote p50 "
        f"{result['promote']['p50_ms']} ms | poll (HEAD) p50 "
        f"{result['champion_poll_unchanged_head']['p50_ms']} ms, pointer GET p50 "
        f"{result['pointer_get']['p50_ms']} ms | promotion seen by another process "
        f"(poll {result['poll_s']} s) p50 {seen.get('p50_ms')} ms max {seen.get('max_ms')} ms "
        f"| via model.events p50 {result['promotion_heard_via_model_events'].get('p50_ms')} ms "
        f"| races {result['promotion_races']} | training append "
        f"{result['training_append']['rows']} rows p50 {result['training_append']['p50_ms']} ms, "
        f"read {result['training_read']['rows']} rows {result['training_read']['ms']} ms -> {path}"
    )


if __name__ == "__main__":  # scripts/bench.sh runs this module directly
    app()


@app.command("ab")
def ab(
    tree: list[str] = typer.Option(
        ...,
        "--tree",
        help="NAME=PATH of a checkout whose scorer runs (two or more; the first is the base)",
    ),
    mix: str = typer.Option("normal", "--mix", help="one traffic mix (loadtest/mixes.py)"),
    rounds: int = typer.Option(3, "--rounds", min=1, help="rounds; the order flips each one"),
    rate: float = typer.Option(2_000.0, "--rate", min=1.0, help="paced rate (tx/s)"),
    duration: float = typer.Option(30.0, "--duration", min=1.0, help="seconds per step"),
    measure: str = typer.Option(
        "paced",
        "--measure",
        help="paced: latency of one mix against the echo floor; backlog: CPU per transaction",
    ),
    backlog: int = typer.Option(
        100_000, "--backlog", min=1_000, help="transactions per backlog step (--measure backlog)"
    ),
    out_dir: Path = typer.Option(Path("bench/results"), "--out-dir", help="JSON folder"),
) -> None:
    """Same-hour A/B: scorers of two or more checkouts alternating in one environment."""
    from loadtest.bench_ab import METRIC, AbConfig, run_ab
    from loadtest.mixes import parse_mixes

    trees: dict[str, Path] = {}
    for item in tree:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder or name in trees:
            raise typer.BadParameter(f"{item!r}: want a new NAME=PATH", param_hint="--tree")
        trees[name] = Path(folder)
    if len(trees) < 2:
        raise typer.BadParameter("give two trees or more", param_hint="--tree")
    try:
        mixes = parse_mixes(mix)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mix") from None
    if len(mixes) != 1:
        raise typer.BadParameter("one mix per A/B", param_hint="--mix")
    chosen = mixes[0]
    if measure not in METRIC:
        raise typer.BadParameter(f"one of {', '.join(METRIC)}", param_hint="--measure")
    config = AbConfig(trees, chosen, rounds, rate, duration, measure, backlog)
    settings = CommonSettings()
    with cli_errors():
        result = run_ab(
            config,
            redis_url=settings.redis_url.get_secret_value(),
            state_dir=settings.state_dir / "bench",
            log=_log,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    what = chosen if measure == "paced" else "backlog"
    path = out_dir / f"ab-{what}-{datetime.now(UTC).strftime('%Y-%m-%dT%H%M')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    metric = METRIC[config.measure]
    _log(f"median {metric} per tree: {result['summary'][f'median_{metric}']}")
    _log(f"over the base, all rounds: {result['summary']['geometric_mean_over_base']}")
    _log(f"written {path}")
