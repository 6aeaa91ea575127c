"""``make bench`` / ``fraudctl bench report``: every benchmark in one run, one report.

Runs the real-time features bench (:mod:`features.bench`), the profile readers bench
(:mod:`features.profiles.bench`), the model bench (:mod:`models.bench`, on a simulated
history), and the scorer bench (:mod:`loadtest.bench_scorer`: backlog, naive baseline,
paced latency beside the echo floor, ramp to the knee, REST). Writes
``bench/results/<date>.json``, ``<date>.md`` (the summary) and ``<date>-latency.png``
(p50 / p99 vs throughput up to overload, scorer and echo, SLA line, knee). A quick run writes
``<date>-quick.*``. A bench that fails is recorded with its error; the others still run.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.bench_cards import cards_line
from loadtest.bench_scorer import (
    Log,
    ScorerBenchConfig,
    backlog_line,
    knee_reach_line,
    run_scorer_bench,
)
from loadtest.bench_setup import load_average, machine_info
from loadtest.latency import knee_limit


@dataclass(frozen=True)
class ReportConfig:
    quick: bool = False
    out_dir: Path = Path("bench/results")
    scorer: ScorerBenchConfig = field(default_factory=ScorerBenchConfig)
    benches: tuple[str, ...] = ("features", "profiles", "model", "scorer")
    model_days: int = 90
    """Days of the handbook-size simulated history the model bench trains and tests on
    (5,000 customers, 10,000 terminals; windows 56 / 7 / 7 days)."""

    @classmethod
    def quick_run(cls, out_dir: Path = Path("bench/results")) -> ReportConfig:
        return cls(
            quick=True,
            out_dir=out_dir,
            scorer=ScorerBenchConfig.quick(),
            benches=("features", "profiles", "scorer"),
        )


def _features(redis_url: str, quick: bool) -> dict[str, Any]:
    import redis

    from features.bench import delete_prefix, run_feature_bench
    from services.allocator import tune_hot_path
    from services.settings import CommonSettings

    allocator = tune_hot_path(CommonSettings())  # as in the scorer, whose hot path this measures
    client = redis.Redis.from_url(redis_url)
    prefix = f"bench{uuid.uuid4().hex[:8]}:features"
    try:
        if quick:
            return run_feature_bench(
                client, prefix, cards=1_000, warm_days=2, repeats=10, allocator=allocator
            )
        return run_feature_bench(client, prefix, allocator=allocator)
    finally:
        delete_prefix(client, prefix)


def _profiles(redis_url: str, quick: bool) -> dict[str, Any]:
    from features.profiles.bench import run_profile_bench

    if quick:
        return run_profile_bench(redis_url, terminals=1_000, rounds=30, sdk_rounds=5)
    return run_profile_bench(redis_url)


def _model(days: int) -> dict[str, Any]:
    """The model bench on a fresh history of the simulator's default (handbook) size, as
    ``fraudctl simulate --days 90`` writes it, with the default 56 / 7 / 7-day windows.
    Its JSON stays in the report only (``model-<date>.json`` belongs to
    ``fraudctl bench model``)."""
    from models.bench import run_model_bench
    from streams.simulator import SimulatorConfig, write_history

    config = SimulatorConfig.default()
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        history = Path(tmp) / "history"
        write_history(history, config, days)
        result = run_model_bench(history, out_dir=Path(tmp) / "out")
    result.pop("written_to", None)
    result["world"] = (
        f"simulated history, default size ({config.n_customers:,} customers, "
        f"{config.n_terminals:,} terminals), {days} days"
    )
    return result


def run_report(
    config: ReportConfig, *, redis_url: str, state_dir: Path, log: Log = print
) -> dict[str, Any]:
    """Run the configured benches; write JSON, markdown and plot; return the report."""
    day = datetime.now(UTC).date().isoformat()
    report: dict[str, Any] = {
        "report": "bench",
        "date": day,
        "quick": config.quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {**asdict(config), "out_dir": str(config.out_dir)},
        "benches": {},
    }
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "features": lambda: _features(redis_url, config.quick),
        "profiles": lambda: _profiles(redis_url, config.quick),
        "model": lambda: _model(config.model_days),
        "scorer": lambda: run_scorer_bench(
            config.scorer, redis_url=redis_url, state_dir=state_dir, log=log
        ),
    }
    for name in config.benches:
        log(f"== {name} (load average {load_average()})")
        started = time.perf_counter()
        try:
            result = runners[name]()
        except Exception as exc:  # one failing bench must not lose the others' numbers
            log(f"{name} bench failed: {exc}")
            result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["load_average_after"] = load_average()
        report["benches"][name] = result
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_report(report, config.out_dir, f"{day}-quick" if config.quick else day)
    return report


def write_report(report: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "md": out_dir / f"{stem}.md",
        "png": out_dir / f"{stem}-latency.png",
    }
    scorer = report["benches"].get("scorer", {})
    plotted = plot_latency(scorer, paths["png"]) if "latency" in scorer else False
    report["files"] = {k: str(v) for k, v in paths.items() if k != "png" or plotted}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(report, paths["png"].name if plotted else None))
    return paths


def plot_latency(scorer: dict[str, Any], path: Path) -> bool:
    """p50 and p99 against achieved throughput, per service, up to overload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ramps = scorer["latency"].get("ramp", {})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {"scorer": "tab:red", "echo": "tab:blue"}
    drawn = False
    for name, data in ramps.items():
        steps = [s for s in data.get("steps", []) if "p99_ms" in s]
        if not steps:
            continue
        x = [s["achieved_rate"] for s in steps]
        color = styles.get(name, "black")
        ax.plot(x, [s["p99_ms"] for s in steps], "o-", color=color, label=f"{name} p99")
        ax.plot(x, [s["p50_ms"] for s in steps], "s--", color=color, alpha=0.6, label=f"{name} p50")
        paced = scorer["latency"].get("paced", {}).get(name, {})
        if "p99_ms" in paced:
            ax.plot(paced["achieved_rate"], paced["p99_ms"], "*", color=color, markersize=12)
        knee = data.get("knee_tx_per_s")
        if knee:
            ax.axvline(knee, color=color, linestyle=":", alpha=0.7)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    sla = scorer.get("config", {}).get("sla_p99_ms", 50.0)
    ax.axhline(sla, color="gray", linestyle="-.", label=f"SLA p99 {sla:.0f} ms")
    ax.set_xlabel("throughput (tx/s, achieved)")
    ax.set_ylabel("produce -> output readable (ms)")
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    load = scorer.get("machine", {}).get("load_average_at_start")
    ax.set_title(f"scorer vs echo floor (star: paced run, dotted: knee; load avg {load})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _fmt(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "-"


def markdown(report: dict[str, Any], png: str | None) -> str:
    m = report["machine"]
    lines = [
        f"# Benchmark report {report['date']}{' (quick)' if report['quick'] else ''}",
        "",
        f"Machine: {m['cores_logical']} logical cores ({m['cores_physical']} physical), "
        f"{m['cpu_model']}, {m['memory_gb']} GB; load average at start "
        f"{m['load_average_at_start']} (a shared machine: numbers are pessimistic).",
        f"Started {report['started_at']}, finished {report.get('finished_at')}.",
        "",
    ]
    for name, bench in report["benches"].items():
        lines.append(
            f"## {name} ({bench.get('seconds')} s, load after {bench.get('load_average_after')})"
        )
        lines.append("")
        if "error" in bench:
            lines += [f"failed: `{bench['error']}`", ""]
            continue
        lines += _section(name, bench)
        lines.append("")
    if png:
        lines += ["## Latency vs throughput", "", f"![latency vs throughput]({png})", ""]
    return "\n".join(lines) + "\n"


def _section(name: str, bench: dict[str, Any]) -> list[str]:
    if name == "features":
        from features.bench import summary_lines

        return [f"    {line}" for line in summary_lines(bench)]
    if name == "profiles":
        d, s = bench["direct_reader"], bench["feast_sdk_get_online_features"]
        return [
            f"{bench['keys_per_batch']} keys/batch: direct reader p50 {_fmt(d['p50_ms'], 2)} ms "
            f"p99 {_fmt(d['p99_ms'], 2)} ms; Feast SDK p50 {_fmt(s['p50_ms'], 2)} ms p99 "
            f"{_fmt(s['p99_ms'], 2)} ms; speedup p50 {_fmt(bench['speedup_p50'])}x; "
            f"parity {bench['parity']}"
        ]
    if name == "model":
        from models.bench import format_report

        return [
            f"{bench.get('world', '')}:",
            "",
            *[f"    {x}" for x in format_report(bench).splitlines()],
        ]
    return _scorer_section(bench)


_LATENCY_COLUMNS = (
    ("target tx/s", "target_rate", 0),
    ("achieved", "achieved_rate", 0),
    ("p50 ms", "p50_ms", 1),
    ("p95 ms", "p95_ms", 1),
    ("p99 ms", "p99_ms", 1),
    ("max ms", "max_ms", 1),
    ("missing", "missing", 0),
    ("broker cpu %", "broker_cpu_pct", 0),
    ("service cpu %", "service_cpu_pct", 0),
    ("redis cpu %", "redis_cpu_pct", 0),
    ("load generator cpu %", "generator_cpu_pct", 0),
)


def _latency_table(latency: dict[str, Any]) -> list[str]:
    head = ["run", "service", *(c[0] for c in _LATENCY_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [("paced", s) for s in latency.get("paced", {}).values()]
    for data in latency.get("ramp", {}).values():
        rows += [("ramp", s) for s in data.get("steps", [])]
    for run, step in rows:
        cells = [run, step["service"], *(_fmt(step.get(k), d) for _, k, d in _LATENCY_COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    knees = ", ".join(
        f"{service} {_knee_text(data)}" for service, data in latency.get("ramp", {}).items()
    )
    return [*lines, "", f"Knee (highest rate with p99 <= SLA), tx/s: {knees}", ""]


def _mix_table(mixes: dict[str, Any]) -> list[str]:
    """One row per traffic mix at the paced rate: scorer and echo floor percentiles, the
    share flagged, the scorer's per-stage p99 per batch."""
    head = "| mix | scorer p50 / p95 / p99 ms | echo p50 / p95 / p99 ms | p99 over echo ms"
    lines = [
        "Traffic mixes at the paced rate (each beside the echo floor of the same mix):",
        "",
        f"{head} | flagged % | stage p99 ms per batch |",
        "|---|---|---|---|---|---|",
    ]
    for mix, m in mixes.items():
        s, e = m.get("scorer", {}), m.get("echo", {})
        flags = m.get("flag_rate")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in m.get("stage_p99_ms", {}).items())
        lines.append(
            f"| {mix} | {' / '.join(_fmt(s.get(k)) for k in ('p50_ms', 'p95_ms', 'p99_ms'))} "
            f"| {' / '.join(_fmt(e.get(k)) for k in ('p50_ms', 'p95_ms', 'p99_ms'))} "
            f"| {_fmt(m.get('p99_over_echo_ms'))} "
            f"| {'-' if flags is None else f'{100 * flags:.2f}'} | {stages or '-'} |"
        )
    return [*lines, ""]


def _knee_text(ramp: dict[str, Any]) -> str:
    """``8,000`` when a step missed the SLA after it; ``>= 24,000 (ramp top)`` or
    ``>= ... (load generator)`` when the knee is only a lower bound."""
    knee = ramp.get("knee_tx_per_s")
    limit = knee_limit(ramp)
    if knee is None:
        return "-"
    return f"{knee:,.0f}" if limit == "sla" else f">= {knee:,.0f} ({limit.replace('_', ' ')})"


def _scorer_section(b: dict[str, Any]) -> list[str]:
    lines = [f"Model {b.get('model_version')}, broker: {b.get('broker')}.", ""]
    if "backlog" in b:
        backlog = backlog_line(b["backlog"]).splitlines()
        lines += ["Backlog (one scorer process):", "", *[f"    {x}" for x in backlog], ""]
    naive = b.get("naive", {})
    if naive:
        lines += [
            f"Naive baseline: {_fmt(naive.get('tx_per_s'))} tx/s, "
            f"{_fmt(naive.get('cpu_us_per_tx'))} us CPU/tx on {naive.get('transactions')} "
            f"transactions -> ratio **{_fmt(b.get('naive_ratio'))}x**",
            "",
        ]
    if b.get("latency"):
        lines += _latency_table(b["latency"])
    if b.get("mixes"):
        lines += _mix_table(b["mixes"])
    if b.get("knee_reach"):
        lines += [f"The {knee_reach_line(b['knee_reach'])}.", ""]
    if b.get("cards"):
        lines += ["Backlog at each card count (one scorer process, Redis of its own):", ""]
        for count, run in b["cards"].items():
            text = f"cards {count}: failed: {run['error']}" if "error" in run else cards_line(run)
            lines.append(f"    {text.strip()}")
        lines.append("")
    rest = b.get("rest", {})
    for mode, run in (rest.get("by_audit_delivery") or {"": rest}).items():
        if not run.get("latency"):
            continue
        r = run["latency"]
        lines += [
            f"REST {run['endpoint']} at {_fmt(run['target_rps'], 0)} rps (achieved "
            f"{_fmt(run['achieved_rps'])}{', audit ' + mode if mode else ''}): "
            f"p50 {_fmt(r.get('p50_ms'), 2)} ms, p95 {_fmt(r.get('p95_ms'), 2)} ms, "
            f"p99 {_fmt(r.get('p99_ms'), 2)} ms, errors {run['errors']}",
            "",
        ]
    lines += ["| target | measured | met |", "|---|---|---|"]
    for name, t in b.get("targets", {}).items():
        if isinstance(t, dict):
            bound = f" ({t['bound']} bound)" if t.get("bound") else ""
            lines.append(f"| {name} | {_fmt(t['value'], 2)}{bound} | {t['met']} |")
    return lines
