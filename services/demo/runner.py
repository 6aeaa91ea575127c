"""``fraudctl demo``: the whole system on the embedded stack, watched on a live dashboard.

Read top to bottom: stack up -> history -> champion -> profiles -> processes -> live
traffic + dashboard -> stop everything this run started -> summary.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from services.api.keys import KeyFile
from services.connections import redis_client
from services.demo import setup
from services.demo.children import Child, stop_all
from services.demo.dashboard import QUANTILES, SLA_S, Frame, render, story_state
from services.demo.plan import AFTER_PROMOTION_SEGMENTS, DEMO_KEY_SCOPES, DemoPlan
from services.demo.scrape import MetricsSnapshot, bucket_delta, quantile, scrape, share_below
from services.demo.summary import Summary, summarize, summary_table
from services.demo.watch import TopicView, TopicWatcher
from services.settings import CommonSettings
from services.stack import stack as stack_ops
from services.stack.process import PidFile, stop
from streams.errors import FraudError
from streams.simulator import GroundTruthStore

WINDOW_S = 10.0
START_TIMEOUT_S = 120.0
GROUP_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 30.0
PLAIN_STATUS_EVERY_S = 10.0
RECORD_WIDTH = 150


class DemoStopped(FraudError):
    """SIGTERM (or SIGINT) asked the demo to stop."""


@dataclass
class Started:
    """What this run started, so it stops exactly that."""

    stack: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    watcher: TopicWatcher | None = None
    traffic: setup.Traffic | None = None
    frame: Frame | None = None  # the last dashboard frame shown
    buckets: list[tuple[float, float]] = field(default_factory=list)  # last e2e histogram
    live_since: float = 0.0  # monotonic start of the live traffic: the time limit counts from it


def with_demo_key(plan: DemoPlan) -> DemoPlan:
    """The plan with a fresh API key for the demo, stored (hashed) in the run's key file."""
    secret, _ = KeyFile(plan.api_keys_file).create("demo", DEMO_KEY_SCOPES)
    return replace(plan, api_key=secret)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise DemoStopped(f"signal {signum}")


def run_demo(plan: DemoPlan, console: Console, dashboard_out: Path | None = None) -> Summary:
    """Run the demo; returns its summary (also printed and written to the run folder)."""
    started = Started()
    previous_term = signal.signal(signal.SIGTERM, _raise_stop)
    stopped_by = "time limit"
    try:
        settings = CommonSettings(
            state_dir=plan.state_dir,
            topic_prefix=plan.topic_prefix,
            redis_prefix=plan.redis_prefix,
            feast_project=plan.feast_project,
        )
        env, bootstrap, redis_url = _stack_up(plan, settings, console, started)
        champion = _prepare(plan, settings, redis_url, console)
        plan = with_demo_key(plan)
        _start_children(plan, env, console, started)
        reach = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
        truth = GroundTruthStore(redis_client(reach), plan.redis_prefix)
        live_wall = datetime.now(UTC)  # timeline times count from the live traffic's start
        watcher = TopicWatcher(
            bootstrap, settings.topics(), truth, live_wall, f"{plan.topic_prefix}dashboard"
        )
        started.watcher = watcher
        watcher.start()
        traffic = setup.Traffic(
            plan,
            bootstrap,
            settings.topics().transactions,
            truth,
            on_switch=lambda: setattr(watcher, "switched_at", time.monotonic()),
        )
        started.traffic = traffic
        started.live_since = time.monotonic()
        traffic.start()
        stopped_by = _live(plan, champion, started, console)
    except (KeyboardInterrupt, DemoStopped):
        stopped_by = "Ctrl-C"
    finally:
        codes = _stop_everything(plan, started, console)
        signal.signal(signal.SIGTERM, previous_term)
    summary = summarize(
        started.traffic.produced if started.traffic else 0,
        started.watcher.view() if started.watcher else TopicView(),
        started.watcher.served if started.watcher else [],
        started.buckets,
    )
    summary.stopped_by = stopped_by
    summary.exit_codes = codes
    _report(plan, summary, started.frame, console, dashboard_out)
    return summary


# -- 1. stack -------------------------------------------------------------------------------
def _stack_up(
    plan: DemoPlan, settings: CommonSettings, console: Console, started: Started
) -> tuple[dict[str, str], str, str]:
    pid_file = PidFile(plan.state_dir / "stack.json")
    before = {name for name, proc in pid_file.read().items() if proc.alive()}
    with console.status("stack up: broker + Redis + topics..."):
        state = stack_ops.up(settings)
    started.stack = [
        c.name for c in (state.kafka, state.redis) if c.started_here and c.name not in before
    ]
    console.print(
        f"[bold]1/5 stack[/bold]  kafka {state.kafka.address}  redis {state.redis.address}  "
        f"started here: {', '.join(started.stack) or 'nothing (reused)'}  "
        f"topics: {plan.topic_prefix}*  redis keys: {plan.redis_prefix}:*"
    )
    env = plan.common_env(state.kafka.address, state.redis.address)
    return env, state.kafka.address, state.redis.address


# -- 2. history, champion, profiles -----------------------------------------------------------
def _prepare(plan: DemoPlan, settings: CommonSettings, redis_url: str, console: Console) -> str:
    from models.registry import ModelRegistry
    from services.retrainer.events import announce_registry

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with console.status(f"simulating {plan.history_days} days of history (small world)..."):
        rows = setup.simulate_history(plan)
    console.print(
        f"[bold]2/5 history[/bold]  {rows:,} transactions, {plan.history_days} days "
        f"-> {plan.history_dir}  ({time.perf_counter() - t0:.0f}s)"
    )
    t0 = time.perf_counter()
    with console.status("training the champion (LightGBM -> ONNX, parity, registry)..."):
        version, metrics = setup.train_champion(plan)
    announce_registry(settings, ModelRegistry(plan.run_dir / "registry"), client_id="demo")
    ap = metrics.get("average_precision")
    ap_text = f"test AP {ap:.3f}" if isinstance(ap, float) else ""
    console.print(
        f"[bold]3/5 champion[/bold]  {version} promoted  {ap_text}  "
        f"({time.perf_counter() - t0:.0f}s)"
    )
    t0 = time.perf_counter()
    log = plan.logs_dir / "materialize.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        console.status("materializing Feast profiles into Redis..."),
        log.open("a") as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        terminals = setup.materialize_profiles(plan, redis_url)
    console.print(
        f"[bold]4/5 profiles[/bold]  {terminals:,} terminals in Feast project "
        f"{plan.feast_project}  ({time.perf_counter() - t0:.0f}s)"
    )
    return version


# -- 3. processes ------------------------------------------------------------------------------
def _start_children(
    plan: DemoPlan, env: dict[str, str], console: Console, started: Started
) -> None:
    for spec in plan.processes():
        started.children.append(Child(spec, env, cwd=plan.run_dir))
    deadline = time.monotonic() + START_TIMEOUT_S
    with console.status("starting scorers, API, feedback, retrainer, reviewers..."):
        while time.monotonic() < deadline:
            dead = [c.name for c in started.children if not c.alive()]
            if dead:
                raise FraudError(f"{', '.join(dead)} exited at start; see {plan.logs_dir}")
            scorers = [c for c in started.children if c.name.startswith("scorer")]
            retrainer = next(c for c in started.children if c.name == "retrainer")
            if all("stage=start" in c.output() for c in scorers) and (
                "stage=start" in retrainer.output()
            ):
                break
            time.sleep(0.5)
        else:
            raise FraudError(f"services did not start in {START_TIMEOUT_S:.0f}s; see logs")
    scorer_count = sum(1 for c in started.children if c.name.startswith("scorer"))
    with console.status("waiting for the scorer group to share the partitions..."):
        group = _scorer_group_state(env["FRAUD_KAFKA_BOOTSTRAP"], plan, scorer_count)
    console.print(
        f"[bold]5/5 services[/bold]  {', '.join(c.name for c in started.children)}  "
        f"scorer group: {group}  logs: {plan.logs_dir}"
    )
    console.print(
        f"API http://127.0.0.1:{plan.api_port}  demo API key: [bold]{plan.api_key}[/bold]"
    )
    console.print(
        f"review console http://127.0.0.1:{plan.api_port}/console  (log in with the demo API key)"
    )


def _scorer_group_state(bootstrap: str, plan: DemoPlan, members: int) -> str:
    """Wait (bounded) until every scorer holds partitions, so traffic is shared from the start.

    Returns the group's state as text; a group that does not settle is reported, not fatal.
    """
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = f"{plan.topic_prefix}scorer"
    state = "unknown"
    deadline = time.monotonic() + GROUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            description = admin.describe_consumer_groups([group])[group].result(10)
        except Exception as exc:  # the broker may not describe groups: go on without
            return f"not described ({type(exc).__name__})"
        assigned = [m for m in description.members if m.assignment.topic_partitions]
        state = f"{description.state.name.lower()}, {len(assigned)}/{members} assigned"
        if description.state == ConsumerGroupState.STABLE and len(assigned) == members:
            return state
        time.sleep(1.0)
    return f"[yellow]{state} (did not settle in {GROUP_TIMEOUT_S:.0f}s)[/yellow]"


# -- 4. live traffic + dashboard ---------------------------------------------------------------
def _live(plan: DemoPlan, champion: str, started: Started, console: Console) -> str:
    """Refresh the dashboard ~1/s until the story is told or time is up; returns why."""
    assert started.watcher is not None and started.traffic is not None
    watcher, traffic = started.watcher, started.traffic
    scorer_urls = [f"http://127.0.0.1:{p}/metrics" for p in plan.scorer_ports]
    retrainer_urls = [f"http://127.0.0.1:{plan.retrainer_port}/metrics"]
    window: deque[tuple[float, float, list[tuple[float, float]]]] = deque()
    buckets: list[tuple[float, float]] = []
    drain_since: float | None = None
    time_up: float | None = None
    last_plain = 0.0
    frame = _frame(plan, champion, started, MetricsSnapshot(), MetricsSnapshot())
    stopped_by = "time limit"
    with Live(render(frame), console=console, refresh_per_second=2, transient=False) as live:
        while True:
            now = time.monotonic()
            scorer, retrainer = scrape(scorer_urls), scrape(retrainer_urls)
            if scorer.endpoints_up == len(scorer_urls):
                buckets = scorer.buckets("fraud_e2e_latency_seconds")
                started.buckets = buckets
            decided = scorer.total("fraud_decisions_total")
            window.append((now, decided, buckets))
            while len(window) > 2 and now - window[1][0] >= WINDOW_S:
                window.popleft()
            frame = _frame(plan, champion, started, scorer, retrainer)
            base_t, base_decided, base_buckets = window[0]
            if now > base_t:
                frame.throughput = max(0.0, decided - base_decided) / (now - base_t)
            recent = bucket_delta(buckets, base_buckets)
            frame.latency_recent = {q: quantile(q, recent) for q in QUANTILES}
            frame.latency_total = {q: quantile(q, buckets) for q in QUANTILES}
            frame.within_sla = share_below(SLA_S, buckets)
            if story_state(frame.topics).startswith("recovered"):
                traffic.finish_after(AFTER_PROMOTION_SEGMENTS)
            started.frame = frame
            live.update(render(frame))
            if not console.is_terminal and now - last_plain >= PLAIN_STATUS_EVERY_S:
                last_plain = now
                console.print(_plain_status(frame), highlight=False)
            if traffic.error is not None:
                stopped_by = f"traffic error: {traffic.error}"
                break
            if traffic.done:
                drain_since = drain_since or now
                if (
                    frame.topics.decisions >= traffic.produced
                    or now - drain_since > DRAIN_TIMEOUT_S
                ):
                    if time_up is None:
                        stopped_by = (
                            "story complete" if traffic.stop_after_segments else "traffic end"
                        )
                    break
            if frame.elapsed_s >= plan.deadline_s and time_up is None:
                time_up = now  # stop producing, let the scorers drain what was sent
                traffic.stop()
            if time_up is not None and now - time_up > plan.segment_s + DRAIN_TIMEOUT_S:
                break
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    traffic.stop()
    watcher.join_truth()
    return stopped_by


def _frame(
    plan: DemoPlan,
    champion: str,
    started: Started,
    scorer: MetricsSnapshot,
    retrainer: MetricsSnapshot,
) -> Frame:
    assert started.watcher is not None and started.traffic is not None
    traffic = started.traffic
    elapsed = time.monotonic() - started.live_since
    if traffic.stopping:
        phase = "time is up: traffic stopped, scorers draining"
    elif traffic.done:
        phase = "story told: traffic finished, scorers draining"
    elif traffic.stop_after_segments is not None:
        left = max(0, traffic.stop_after_segments - traffic.segments)
        phase = f"recovery: new champion serving, {left} simulated day(s) to go"
    elif traffic.switched_at is not None:
        phase = "NEW PATTERN ON: card testing (scenario 4)"
    else:
        to_go = (plan.switch_segment - traffic.segments) * plan.segment_s
        phase = f"baseline traffic, card testing in ~{max(0.0, to_go):.0f}s"
    notes = []
    if started.watcher.error is not None:
        notes.append(f"dashboard consumer error: {started.watcher.error}")
    notes += [
        f"{c.name} exited ({c.proc.returncode}); log {c.spec.log}"
        for c in started.children
        if not c.alive()
    ]
    return Frame(
        elapsed_s=elapsed,
        deadline_s=plan.deadline_s,
        phase=phase,
        rate=plan.rate,
        produced=traffic.produced,
        api_url=f"http://127.0.0.1:{plan.api_port}",
        api_key=plan.api_key,
        initial_champion=champion,
        scorer=scorer,
        retrainer=retrainer,
        topics=started.watcher.view(),
        processes={c.name: c.alive() for c in started.children},
        notes=notes,
    )


def _plain_status(frame: Frame) -> str:
    p99 = frame.latency_recent.get(0.99)
    rate = frame.throughput or 0.0
    return (
        f"[{frame.elapsed_s:4.0f}s] {frame.phase} | {rate:.0f} decisions/s, "
        f"p99 {'-' if p99 is None else f'{p99 * 1000:.1f} ms'} | "
        f"decided {frame.topics.decisions:,} | flagged {frame.topics.review_cases:,} | "
        f"labels {sum(frame.topics.labels.values()):,} | {story_state(frame.topics)}"
    )


# -- 5. stop and report ------------------------------------------------------------------------
def _stop_everything(plan: DemoPlan, started: Started, console: Console) -> dict[str, int | None]:
    if started.traffic is not None:
        started.traffic.stop()
    with console.status("stopping the services this demo started..."):
        codes = stop_all(started.children)
        if started.watcher is not None:
            started.watcher.stop()
            started.watcher.join(10)
        if started.traffic is not None:
            started.traffic.join(plan.segment_s + 10)
        if started.stack:
            pid_file = PidFile(plan.state_dir / "stack.json")
            running = pid_file.read()
            for name in started.stack:
                if name in running:
                    with contextlib.suppress(Exception):
                        stop(running.pop(name))
            pid_file.write(running)
    stack = ", ".join(started.stack) if started.stack else "nothing (it was already running)"
    console.print(f"\nstopped {len(codes)} services; stack stopped: {stack}")
    return codes


def render_text(frame: Frame, width: int = RECORD_WIDTH) -> str:
    """The dashboard as plain text (for the README and the run folder)."""
    recorder = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    recorder.print(render(frame))
    return recorder.export_text()


def _report(
    plan: DemoPlan,
    summary: Summary,
    frame: Frame | None,
    console: Console,
    dashboard_out: Path | None,
) -> None:
    console.print(summary_table(summary))
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    (plan.run_dir / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    if frame is not None:
        text = render_text(frame)
        (plan.run_dir / "dashboard.txt").write_text(text)
        if dashboard_out is not None:
            dashboard_out.parent.mkdir(parents=True, exist_ok=True)
            dashboard_out.write_text(text)
    console.print(f"run folder: {plan.run_dir}  logs: {plan.logs_dir}")
