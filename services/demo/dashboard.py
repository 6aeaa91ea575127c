"""The demo's terminal dashboard: one :class:`Frame` of numbers in, one rich renderable out.

Pure rendering (no I/O), so a frame can be checked in unit tests and exported as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from services.demo.scrape import MetricsSnapshot
from services.demo.watch import TopicView
from streams.events import ModelEvent

SLA_S = 0.050
QUANTILES = (0.50, 0.95, 0.99)
DRIFT_ROWS = 6  # lowest p-values shown


@dataclass
class Frame:
    """Everything one dashboard refresh shows."""

    elapsed_s: float
    deadline_s: float
    phase: str
    rate: float
    produced: int
    api_url: str
    api_key: str
    initial_champion: str
    throughput: float | None = None
    latency_recent: dict[float, float | None] = field(default_factory=dict)
    latency_total: dict[float, float | None] = field(default_factory=dict)
    within_sla: float | None = None
    scorer: MetricsSnapshot = field(default_factory=MetricsSnapshot)
    retrainer: MetricsSnapshot = field(default_factory=MetricsSnapshot)
    topics: TopicView = field(default_factory=TopicView)
    processes: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0.0:
        return "< 1e-300"  # below float precision: the test's p-value underflows
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def serving_versions(scorer: MetricsSnapshot) -> list[str]:
    """Model versions the scorers report in ``fraud_model_info`` (one per process)."""
    return sorted(v for v in scorer.by_label("fraud_model_info", "version"))


def event_line(event: ModelEvent, initial_champion: str | None = None) -> tuple[str, str]:
    """(style, text) of a model event in the story's words."""
    if event.model_version == initial_champion and event.kind in ("registered", "promoted"):
        return "cyan", f"first champion {event.kind}: {event.model_version}"
    d = event.details
    if event.kind == "drift_report":
        if d.get("drifted") or d.get("score_drifted"):
            names = ", ".join(d.get("drifted_features", [])[:4]) or "scores"
            return "bold yellow", f"DRIFT DETECTED on {event.model_version}: {names}"
        return "dim", f"drift check on {event.model_version}: no drift"
    if event.kind == "quality_report":
        verdict = "QUALITY DROP" if d.get("dropped") else "quality ok"
        ap = d.get("average_precision")
        text = f"{verdict} on {event.model_version}" + (f" (AP {ap:.3f})" if ap else "")
        return ("bold yellow" if d.get("dropped") else "dim"), text
    if event.kind == "registered":
        return "cyan", f"challenger trained + registered: {event.model_version}"
    if event.kind == "promoted":
        gates = sum(1 for r in event.reasons for n in range(1, 6) if f"gate {n} " in r)
        gate_text = f"gates passed ({gates}/5 reported)" if gates else "gates passed"
        previous = event.previous_version or "-"
        return "bold green", f"{gate_text} -> PROMOTED {event.model_version} (was {previous})"
    if event.kind == "rejected":
        failed = [r for r in event.reasons if "FAIL" in r]
        reason = (failed or event.reasons or [""])[0]
        return "bold red", f"REJECTED {event.model_version}: {reason[:90]}"
    if event.kind == "rolled_back":
        return "bold magenta", f"rolled back to {event.model_version}"
    return "", f"{event.kind} {event.model_version}"


def story_state(topics: TopicView) -> str:
    """Where the loop is: the next thing the viewer should expect."""
    events = [e for _, e in topics.events]
    first_alarm = next((i for i, e in enumerate(events) if _alarm(e)), None)
    if first_alarm is None:
        return "monitoring"
    after = events[first_alarm + 1 :]
    promoted = [e for e in after if e.kind == "promoted"]
    if promoted:
        return f"recovered: {promoted[-1].model_version} serving"
    if any(e.kind == "rejected" for e in after):
        return "challenger rejected, champion keeps serving"
    if any(e.kind == "registered" for e in after):
        return "challenger in the gates"
    return "training challenger"


def _alarm(event: ModelEvent) -> bool:
    """A monitor report that triggers retraining: drift or a quality drop."""
    d = event.details
    if event.kind == "drift_report":
        return bool(d.get("drifted") or d.get("score_drifted"))
    return event.kind == "quality_report" and bool(d.get("dropped"))


def _header(frame: Frame) -> Panel:
    text = Text()
    text.append("fraud detection demo", style="bold")
    text.append(f"   {frame.elapsed_s:5.0f}s / {frame.deadline_s:.0f}s   ")
    text.append(frame.phase, style="bold magenta")
    text.append(f"   loop: {story_state(frame.topics)}", style="bold cyan")
    text.append(f"\nAPI {frame.api_url}   key ", style="dim")
    text.append(frame.api_key, style="bold")
    text.append(
        f'   try: curl -H "X-API-Key: {frame.api_key}" {frame.api_url}/v1/models/current',
        style="dim",
    )
    return Panel(text, padding=(0, 1))


def _traffic(frame: Frame) -> Table:
    table = Table(title="traffic & latency (SLA p99 < 50 ms)", expand=True)
    table.add_column("")
    table.add_column("last 10 s", justify="right")
    table.add_column("whole run", justify="right")
    rate = "-" if frame.throughput is None else f"{frame.throughput:,.0f}/s"
    table.add_row("decisions", rate, f"{frame.topics.decisions:,}")
    table.add_row("produced", f"{frame.rate:,.0f}/s target", f"{frame.produced:,}")
    for q in QUANTILES:
        recent, total = frame.latency_recent.get(q), frame.latency_total.get(q)
        style = "red" if recent is not None and recent > SLA_S else "green"
        table.add_row(f"e2e p{q * 100:.0f}", Text(fmt_ms(recent), style=style), fmt_ms(total))
    share = "-" if frame.within_sla is None else f"{frame.within_sla:.2%}"
    table.add_row("within 50 ms", "", share)
    return table


def _decisions(frame: Frame) -> Table:
    v = frame.topics
    table = Table(title="decisions, review, labels", expand=True)
    table.add_column("")
    table.add_column("count", justify="right")
    total = max(v.decisions, 1)
    for outcome in ("approve", "review", "decline"):
        n = v.outcomes.get(outcome, 0)
        table.add_row(outcome, f"{n:,} ({n / total:.1%})")
    labelled = v.labels.get("oracle", 0) + v.labels.get("analyst", 0)
    table.add_row("review queue: flagged", f"{v.review_cases:,}")
    table.add_row("review queue: labelled", f"{labelled:,}")
    for source in ("oracle", "analyst", "chargeback"):
        table.add_row(f"labels from {source}", f"{v.labels.get(source, 0):,}")
    table.add_row("fraud labels", f"{v.fraud_labels:,}")
    return table


def _models(frame: Frame) -> Table:
    r, v = frame.retrainer, frame.topics
    table = Table(title="models & drift", expand=True)
    table.add_column("", no_wrap=True, overflow="ellipsis")
    table.add_column("value", justify="right")
    serving = serving_versions(frame.scorer)
    table.add_row("serving", ", ".join(serving) or "-")
    for version, count in sorted(v.by_version.items()):
        tag = " (initial)" if version == frame.initial_champion else ""
        table.add_row(f"decided by {version}{tag}", f"{count:,}")
    for version, stats in sorted(v.pattern.items()):
        recall = "-" if stats.recall is None else f"{stats.recall:.0%}"
        table.add_row(f"new-pattern fraud caught, {version}", f"{recall} of {stats.fraud}")
    if r.has("fraud_drift_detected"):
        drift = r.total("fraud_drift_detected")
        table.add_row("drift", Text("DRIFT" if drift else "none", "bold yellow" if drift else ""))
        table.add_row("score drift KS p", fmt_p(r.total("fraud_score_drift_p_value")))
        for name, p, drifted in drift_p_values(frame)[:DRIFT_ROWS]:
            table.add_row(f"  p {name}{' *' if drifted else ''}", fmt_p(p))
    else:
        table.add_row("drift", "no check yet")
    checks = r.by_label("fraud_retrainer_checks_total", "check")
    runs = r.by_label("fraud_retrainer_runs_total", "result")
    table.add_row("checks", ", ".join(f"{k} {n:.0f}" for k, n in sorted(checks.items())) or "0")
    table.add_row("retrains", ", ".join(f"{k} {n:.0f}" for k, n in sorted(runs.items())) or "0")
    return table


def drift_p_values(frame: Frame) -> list[tuple[str, float, bool]]:
    """(feature, p-value, drifted) of the tested features, lowest p first.

    From the last drift report on ``model.events`` (it says which features were only
    reported, e.g. calendar ones); the retrainer's gauges when there is none yet.
    """
    reports = [e for _, e in frame.topics.events if e.kind == "drift_report"]
    if reports:
        d = reports[-1].details
        ignored = set(d.get("ignored", []))
        drifted = set(d.get("drifted_features", []))
        rows = [
            (name, float(p), name in drifted)
            for name, p in d.get("p_values", {}).items()
            if name not in ignored and p is not None
        ]
    else:
        flags = frame.retrainer.by_label("fraud_drift_feature_drifted", "feature")
        rows = [
            (name, p, bool(flags.get(name)))
            for name, p in frame.retrainer.by_label(
                "fraud_drift_feature_p_value", "feature"
            ).items()
        ]
    return sorted(rows, key=lambda row: row[1])


def _timeline(frame: Frame) -> Panel:
    text = Text()
    events = frame.topics.events[-10:]
    if not events:
        text.append("waiting for the first model event...", style="dim")
    for at, event in events:
        style, line = event_line(event, frame.initial_champion)
        text.append(f"{at:6.0f}s  ", style="dim")
        text.append(line + "\n", style=style)
    for note in frame.notes[-4:]:
        text.append(note + "\n", style="dim")
    return Panel(text, title="timeline (model.events)", padding=(0, 1))


def _processes(frame: Frame) -> Text:
    text = Text("processes: ")
    for name, alive in frame.processes.items():
        text.append(f"{name} ", style="green" if alive else "bold red")
        text.append("up  " if alive else "DOWN  ", style="dim" if alive else "bold red")
    return text


def render(frame: Frame) -> RenderableType:
    row = Table.grid(expand=True)
    for _ in range(3):
        row.add_column(ratio=1)
    row.add_row(_traffic(frame), _decisions(frame), _models(frame))
    return Group(_header(frame), row, _timeline(frame), _processes(frame))
