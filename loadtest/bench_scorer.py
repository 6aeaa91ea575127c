"""``fraudctl bench scorer``: throughput, latency, knee, naive ratio and REST, in one run.

Phases, all on one broker (its own noida-db on a free port unless one is given), the real
Redis, one champion and the same simulated world (profiles materialised in Feast):

1. backlog - pre-produce N transactions, run one real scorer process over them
   (:mod:`loadtest.scorer_probe`): sustained tx/s, per-stage and CPU us/tx, RSS, and the
   broker's and Redis's CPU share over the same window;
2. naive - the same on a smaller N with :mod:`loadtest.baseline`; the throughput ratio;
3. latency - the zero-work echo service (:mod:`loadtest.echo`), then the real scorer
   (``fraudctl serve scorer``), each alone: the paced rate, then the step ramp until p99
   misses the SLA (the knee), every step on topics and in a process of its own (the
   embedded broker slows down as a log grows: :class:`_FreshSteps`); for the scorer, each
   step also records its own per-batch stage times and batch size (from its
   ``/metrics``). Produce -> readable, with the output's broker append time as
   "readable" by default (the reader stays idle during a step; :mod:`loadtest.latency`
   explains the two reader modes);
4. mixes - the paced run again with the other traffic mixes (:mod:`loadtest.mixes`: an
   attack burst, cold cards, a generator built from the JSON Schema alone), each for the
   echo and then the scorer: p50/p95/p99 beside the echo floor of the same mix, the share
   flagged, and the scorer's per-stage p99 per batch (the paced run above is the normal
   mix);
5. REST - ``POST /v1/score`` at a fixed request rate, one transaction per request;
6. cards - the backlog again at each of ``card_counts`` active cards, each world with
   weeks of history seeded on a Redis of its own (:mod:`loadtest.bench_cards`): tx/s,
   scorer and Redis CPU per transaction, card-cache hit rate, Redis bytes per card and
   per terminal, RSS.

Numbers are returned (and printed by the CLI); nothing is asserted. The machine is shared,
so every result records the load average next to it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import redis
from prometheus_client.parser import text_string_to_metric_families

from loadtest.bench_cards import card_count_phase
from loadtest.bench_setup import (
    BenchEnv,
    BenchError,
    CpuSampler,
    bench_environment,
    load_average,
    machine_info,
    process_tree_cpu,
    produce_all,
    redis_cpu,
    spawn_module,
    stop_process,
)
from loadtest.latency import (
    APPEND_TIME_CONFIG,
    OutputKind,
    OutputReader,
    ReaderMode,
    Service,
    format_step,
    knee_limit,
    measure_step,
    ramp,
)
from loadtest.mixes import MIXES, Mix
from loadtest.procstats import collector_text
from loadtest.rest_bench import run_rest_bench
from services.stack.process import free_port
from streams.topics import SCORED, Topics

Log = Callable[[str], None]
PHASES: tuple[str, ...] = ("backlog", "naive", "latency", "mixes", "rest", "cards")
KNEE_SHARE_TARGET = 0.8
"""The issue's target: the scorer's knee at least this share of the echo's."""
KNEE_BACKLOG_TARGET = 0.6
"""The latency target under any traffic: the scorer's knee at least this share of its own
backlog throughput in the same run (how much of its ceiling it holds within the SLA)."""


@dataclass(frozen=True)
class ScorerBenchConfig:
    backlog: int = 200_000
    rate: float = 2_000.0
    duration_s: float = 30.0
    ramp_rates: tuple[float, ...] = (
        500.0,
        1_000.0,
        2_000.0,
        4_000.0,
        6_000.0,
        8_000.0,
        10_000.0,
        12_000.0,
        14_000.0,
        16_000.0,
        20_000.0,
        24_000.0,
        28_000.0,
        32_000.0,
    )
    """Up to the echo's knee where the box allows: with 12,000 as the top the echo never
    missed the SLA, so its knee (and the share's denominator) was only a lower bound; it
    held p99 <= 13 ms at 32,000 on a 2-core EPYC VM. The scorer's ramp ends at overload."""
    ramp_step_s: float = 10.0
    naive: int = 1_000
    rest_rps: float = 200.0
    rest_duration_s: float = 20.0
    sla_p99_ms: float = 50.0
    reader: ReaderMode = "append-time"
    bootstrap: str | None = None
    mixes: tuple[Mix, ...] = MIXES
    """Traffic mixes of the paced run (``normal`` is the paced latency run itself)."""
    card_counts: tuple[int, ...] = (5_000, 1_000_000)
    """Active cards of the cards phase's worlds, one backlog run each."""
    cards_backlog: int = 200_000
    phases: tuple[str, ...] = PHASES

    @classmethod
    def quick(cls, **overrides: Any) -> ScorerBenchConfig:
        """A smoke run (about two minutes): every phase, small numbers."""
        base: dict[str, Any] = {
            "backlog": 10_000,
            "rate": 1_000.0,
            "duration_s": 5.0,
            "ramp_rates": (1_000.0, 3_000.0),
            "ramp_step_s": 4.0,
            "naive": 300,
            "rest_rps": 100.0,
            "rest_duration_s": 5.0,
            "card_counts": (2_000,),
            "cards_backlog": 5_000,
        }
        base.update(overrides)
        return cls(**base)


def _log_tail(path: Path, chars: int = 1500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _run_to_end(
    env: BenchEnv,
    module: str,
    args: list[str],
    env_vars: dict[str, str],
    name: str,
    sampler: CpuSampler,
    timeout_s: float,
) -> dict[str, Any]:
    out = env.workdir / f"{name}.json"
    log = env.workdir / f"{name}.log"
    proc = spawn_module(module, [*args, "--out", str(out)], env_vars, log)
    sampler.add(name, process_tree_cpu(proc.pid))
    try:
        code = proc.wait(timeout_s)
    finally:
        stop_process(proc)
    if code != 0 or not out.exists():
        raise BenchError(f"{name} exited with {code}: {_log_tail(log)}")
    stats: dict[str, Any] = json.loads(out.read_text())
    first, last = stats.get("first_wall"), stats.get("last_wall")
    if first and last and last > first:
        stats["broker_cpu_pct"] = sampler.share("broker", first, last)
        stats["redis_cpu_pct"] = sampler.share("redis", first, last)
        redis_pct = stats["redis_cpu_pct"]
        if redis_pct is not None and stats["decided"]:
            wall = last - first
            stats["redis_cpu_us_per_tx"] = redis_pct / 100 * wall * 1e6 / stats["decided"]
    stats["load_average"] = load_average()
    return stats


def backlog_phase(
    env: BenchEnv, n: int, sampler: CpuSampler, log: Log, phase: str = "backlog"
) -> dict[str, Any]:
    """``n`` transactions of the world decided from a backlog by one scorer probe, on the
    topics (and consumer group) of ``phase``: a run with several backlogs names each."""
    with env.phase_topics(phase) as topics:
        transactions = env.world.take(n)
        seconds = produce_all(env.bootstrap, topics.transactions, transactions)
        log(f"backlog: {n:,} transactions produced in {seconds:.1f}s; scoring with one process")
        stats = _run_to_end(
            env,
            "loadtest.scorer_probe",
            ["--max-idle-s", "6"],
            env.service_env(topics, "scorer"),
            "scorer-backlog",
            sampler,
            timeout_s=1800,
        )
        stats.update(
            {"backlog": n, "produce_s": round(seconds, 2), "complete": stats["decided"] == n}
        )
        return stats


def naive_phase(env: BenchEnv, n: int, sampler: CpuSampler, log: Log) -> dict[str, Any]:
    with env.phase_topics("naive") as topics:
        produce_all(env.bootstrap, topics.transactions, env.world.take(n))
        log(f"naive baseline: {n:,} transactions, one at a time")
        stats = _run_to_end(
            env,
            "loadtest.baseline",
            ["--feast-repo", str(env.feast_repo), "--max-idle-s", "6"],
            env.service_env(topics, "naive"),
            "naive",
            sampler,
            timeout_s=1800,
        )
        stats["transactions"] = n
        return stats


def _start_service(
    env: BenchEnv, name: str, topics: Topics, sampler: CpuSampler, reader: ReaderMode
) -> tuple[subprocess.Popen[bytes], Service, Path, int | None]:
    """The real scorer (``fraudctl serve scorer``) or the echo service, on ``topics``; and
    the scorer's metrics port."""
    log_path = env.workdir / f"{topics.prefix}{name}.log"
    metrics_port = None
    if name == "scorer":
        metrics_port = free_port()
        args = ["serve", "scorer", "--metrics-port", str(metrics_port)]
        proc = spawn_module("services.cli", args, env.service_env(topics, name), log_path)
    else:
        args = ["--bootstrap", env.bootstrap, "--source", topics.transactions]
        args += ["--sink", topics.scored, "--group", f"{topics.prefix}echo"]
        proc = spawn_module("loadtest.echo", args, {}, log_path)
    probe = f"{name}:{proc.pid}"  # one CPU probe per process: each step has its own
    sampler.add(probe, process_tree_cpu(proc.pid))
    kind: OutputKind = "decision" if name == "scorer" else "echo"
    output = OutputReader(
        env.bootstrap, topics.scored, topics.partition_count(SCORED), kind, reader
    )
    service = Service(name, topics.transactions, output, proc.pid, cpu_probe=probe)
    return proc, service, log_path, metrics_port


_TOTALS = ("fraud_stage_latency_seconds", "fraud_batch_size_records", "fraud_gc_pause_seconds")


def _stage_totals(port: int) -> dict[str, tuple[float, float]]:
    """The scorer's stage histograms (seconds summed, batches), its batch sizes
    (``batch``: transactions summed, batches) and its garbage collector's pauses
    (``gc:<generation>``: seconds summed, pauses), read from its ``/metrics``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in _TOTALS:
            continue
        for sample in family.samples:
            kind = sample.name.rsplit("_", 1)[-1]
            if kind in ("sum", "count"):
                generation = sample.labels.get("generation")
                key = f"gc:{generation}" if generation else sample.labels.get("stage", "batch")
                totals.setdefault(key, [0.0, 0.0])[kind == "count"] = sample.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


Buckets = dict[str, list[tuple[float, float]]]


def _stage_buckets(port: int) -> Buckets:
    """The scorer's stage histograms as (upper bound s, cumulative batches) per stage."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != "fraud_stage_latency_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                out.setdefault(sample.labels["stage"], []).append((bound, sample.value))
    return {stage: sorted(rows) for stage, rows in out.items()}


def stage_p99_between(before: Buckets, after: Buckets, q: float = 0.99) -> dict[str, float]:
    """The ``q`` quantile (ms per batch) of each stage between two readings, interpolated
    within its histogram bucket (the last finite bound when it falls in ``+Inf``)."""
    out: dict[str, float] = {}
    for stage, rows in after.items():
        earlier = dict(before.get(stage, []))
        counts = [(bound, cum - earlier.get(bound, 0.0)) for bound, cum in rows]
        total = counts[-1][1] if counts else 0.0
        if total <= 0:
            continue
        want, low, below = q * total, 0.0, 0.0
        for bound, cum in counts:
            if cum >= want:
                if bound == float("inf"):
                    out[stage] = round(low * 1e3, 3)
                else:
                    share = (want - below) / (cum - below) if cum > below else 1.0
                    out[stage] = round((low + share * (bound - low)) * 1e3, 3)
                break
            low, below = bound, cum
    return out


def _stages_between(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Mean ms per batch of each stage, and the mean batch size, between two readings."""

    def delta(key: str) -> tuple[float, float]:
        (s0, c0), (s1, c1) = before.get(key, (0.0, 0.0)), after.get(key, (0.0, 0.0))
        return s1 - s0, c1 - c0

    stages: dict[str, float] = {}
    pauses: dict[str, dict[str, float]] = {}
    for key in after:
        seconds, batches = delta(key)
        if key.startswith("gc:"):
            pauses[f"gen{key[3:]}"] = {"pauses": batches, "ms": round(1e3 * seconds, 1)}
        elif key != "batch" and batches:
            stages[key] = round(1e3 * seconds / batches, 3)
    size, batches = delta("batch")
    mean_batch = round(size / batches, 1) if batches else None
    return {"stage_ms_per_batch": stages, "mean_batch": mean_batch, "gc_pauses": pauses}


@dataclass
class _FreshSteps:
    """Paced steps of one service, each on topics and in a process of its own.

    The embedded broker's CPU per fetch grows with the length of the log it serves
    (measured: an idle consumer of 12 partitions costs it 39 % of a core on an empty
    topic, 55 / 82 / 113 % after 100,000 / 300,000 / 600,000 records), so steps run one
    after another on the same topics measured each rate against a slower broker than the
    one before - the ramp's last steps against logs of 300,000+ records. Apache Kafka
    indexes its logs and has no such cost. Each step: new topics, a new service process,
    the warm-up (500 tx/s for 2 s, untimed), the paced run, then both are removed.
    """

    env: BenchEnv
    name: str
    config: ScorerBenchConfig
    sampler: CpuSampler
    count: int = 0

    def __call__(self, rate: float, duration_s: float, mix: Mix = "normal") -> dict[str, Any]:
        self.count += 1
        output_config = APPEND_TIME_CONFIG if self.config.reader == "append-time" else None
        phase = f"{self.name}-{self.count}"
        with self.env.phase_topics(phase, scored_config=output_config) as topics:
            proc, service, log_path, port = _start_service(
                self.env, self.name, topics, self.sampler, self.config.reader
            )
            try:
                self._warm_up(service, log_path)
                before = _stage_totals(port) if port else {}
                buckets = _stage_buckets(port) if port else {}
                step = measure_step(
                    service,
                    bootstrap=self.env.bootstrap,
                    rate=rate,
                    duration_s=duration_s,
                    workdir=self.env.workdir,
                    sampler=self.sampler,
                    mix=mix,
                )
                step["load_average"] = load_average()
                if port:
                    step.update(_stages_between(before, _stage_totals(port)))
                    step["stage_p99_ms"] = stage_p99_between(buckets, _stage_buckets(port))
                return step
            finally:
                service.reader.close()
                stop_process(proc)

    def _warm_up(self, service: Service, log_path: Path) -> None:
        warm = measure_step(
            service,
            bootstrap=self.env.bootstrap,
            rate=500.0,
            duration_s=2.0,
            workdir=self.env.workdir,
            drain_s=20.0,
        )
        if not warm.get("received"):
            raise BenchError(f"{self.name} answered nothing in the warm-up: {_log_tail(log_path)}")


def latency_phase(
    env: BenchEnv, config: ScorerBenchConfig, sampler: CpuSampler, log: Log
) -> dict[str, Any]:
    """Echo, then scorer, each alone on the machine: the paced run, then the ramp; every
    step on fresh topics with a fresh process (:class:`_FreshSteps`)."""
    out: dict[str, Any] = {"paced": {}, "ramp": {}}
    log(
        f"latency: paced {config.rate:,.0f} tx/s for {config.duration_s:.0f}s, then ramp "
        f"{', '.join(f'{r:,.0f}' for r in config.ramp_rates)} tx/s ({config.ramp_step_s:.0f}s "
        f"each) past the {config.sla_p99_ms:.0f} ms SLA until overloaded "
        f"(p99 > {4 * config.sla_p99_ms:.0f} ms); echo first, then the scorer; each step on "
        f"its own topics and process; readable = {config.reader}"
    )
    for name in ("echo", "scorer"):
        step = _FreshSteps(env, name, config, sampler)
        out["paced"][name] = paced = step(config.rate, config.duration_s)
        log(format_step(paced))
        out["ramp"][name] = ramp(
            partial(step, duration_s=config.ramp_step_s), config.ramp_rates, config.sla_p99_ms, log
        )
    return out


def mixes_phase(
    env: BenchEnv, config: ScorerBenchConfig, sampler: CpuSampler, log: Log, normal: Any
) -> dict[str, Any]:
    """Each mix at the paced rate, echo then scorer on fresh topics and processes; the
    normal mix is the latency phase's paced run (``normal``: its ``paced`` results)."""
    out: dict[str, Any] = {}
    steps = {name: _FreshSteps(env, name, config, sampler) for name in ("echo", "scorer")}
    for mix in config.mixes:
        if mix == "normal" and normal:
            runs = {"echo": normal.get("echo", {}), "scorer": normal.get("scorer", {})}
        else:
            log(f"mix {mix}: paced {config.rate:,.0f} tx/s for {config.duration_s:.0f}s")
            runs = {name: step(config.rate, config.duration_s, mix) for name, step in steps.items()}
            for run in runs.values():
                log(format_step(run))
        out[mix] = mix_summary(runs["echo"], runs["scorer"])
        log(mix_line(mix, out[mix]))
    return out


def mix_summary(echo: dict[str, Any], scorer: dict[str, Any]) -> dict[str, Any]:
    """One mix: the scorer's percentiles beside the echo floor's, the flag share and the
    scorer's per-stage p99 per batch."""

    def pct(step: dict[str, Any]) -> dict[str, Any]:
        return {k: step.get(k) for k in ("p50_ms", "p95_ms", "p99_ms", "missing", "error")}

    over = (
        round(scorer["p99_ms"] - echo["p99_ms"], 3)
        if scorer.get("p99_ms") is not None and echo.get("p99_ms") is not None
        else None
    )
    return {
        "echo": pct(echo),
        "scorer": pct(scorer),
        "p99_over_echo_ms": over,
        "flag_rate": scorer.get("flag_rate"),
        "stage_p99_ms": scorer.get("stage_p99_ms", {}),
        "gc_pauses": scorer.get("gc_pauses", {}),
        "mean_batch": scorer.get("mean_batch"),
        "steps": {"echo": echo, "scorer": scorer},
    }


def mix_line(mix: str, m: dict[str, Any]) -> str:
    s, e = m["scorer"], m["echo"]
    stages = " ".join(f"{k}={v:.1f}" for k, v in m.get("stage_p99_ms", {}).items())
    flags = m.get("flag_rate")
    full = m.get("gc_pauses", {}).get("gen2", {})
    return (
        f"  {mix:<7} scorer p50/p95/p99 {s.get('p50_ms')}/{s.get('p95_ms')}/{s.get('p99_ms')} ms"
        f" | echo {e.get('p50_ms')}/{e.get('p95_ms')}/{e.get('p99_ms')} ms | flagged "
        f"{'-' if flags is None else f'{100 * flags:.2f} %'} | stage p99 ms/batch: {stages}"
        f" | full GC {full.get('pauses', 0):.0f} pauses, {full.get('ms', 0.0):.0f} ms"
    )


REST_DELIVERIES = ("acked", "async")
"""The API's audit delivery modes, each measured with its own transactions; the first is
the default and the one the target is checked on (services/api/audit.py)."""


def rest_phase(env: BenchEnv, config: ScorerBenchConfig, log: Log) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for delivery in REST_DELIVERIES:
        with env.phase_topics(f"rest-{delivery}") as topics:
            warmup = 100
            count = round(config.rest_rps * config.rest_duration_s) + warmup
            now = datetime.now(UTC)
            transactions = [
                msgspec.structs.replace(t, event_time=now) for t in env.world.take(count)
            ]
            log(
                f"REST: POST /v1/score at {config.rest_rps:.0f} rps for "
                f"{config.rest_duration_s:.0f}s, audit delivery {delivery}"
            )
            run = run_rest_bench(
                {**env.service_env(topics, "api"), "FRAUD_AUDIT_DELIVERY": delivery},
                transactions,
                rps=config.rest_rps,
                warmup=warmup,
                log_path=env.workdir / f"api-{delivery}.log",
            )
            run["audit_delivery"] = delivery
            run["load_average"] = load_average()
            runs[delivery] = run
    return {**runs[REST_DELIVERIES[0]], "by_audit_delivery": runs}


def cards_phase(
    env: BenchEnv, config: ScorerBenchConfig, sampler: CpuSampler, log: Log
) -> dict[str, Any]:
    """The backlog at each card count; a count that fails keeps its error, not the run's."""
    out: dict[str, Any] = {}
    for cards in config.card_counts:
        try:
            out[str(cards)] = card_count_phase(env, cards, config.cards_backlog, sampler, log)
        except Exception as exc:  # one count failing must not lose the others' numbers
            log(f"cards {cards:,} failed: {exc}")
            out[str(cards)] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


CARD_TARGETS_AT = 1_000_000


def card_targets(cards: dict[str, Any]) -> dict[str, Any]:
    """The targets of one scorer process at :data:`CARD_TARGETS_AT` active cards."""
    run = cards.get(str(CARD_TARGETS_AT))
    if not run or "error" in run:
        return {}
    tx_s, cpu, rss = run.get("tx_per_s"), run.get("cpu_us_per_tx"), run.get("max_rss_mb")
    redis_us = run.get("redis_cpu_us_per_tx")

    def check(name: str, value: float | None, ok: bool) -> tuple[str, dict[str, Any]]:
        return f"1M_cards:{name}", {"value": value, "met": ok if value is not None else None}

    return dict(
        [
            check("backlog_tx_per_s>=10000", tx_s, (tx_s or 0) >= 10_000),
            check("cpu_us_per_tx<=60", cpu, (cpu or 1e9) <= 60),
            check("redis_cpu_us_per_tx<=20", redis_us, (redis_us or 1e9) <= 20),
            check("rss_mb<=400", rss, (rss or 1e9) <= 400),
        ]
    )


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets next to what was measured (None: not measured)."""
    backlog, naive = result.get("backlog", {}), result.get("naive", {})
    paced, ramps = (
        result.get("latency", {}).get("paced", {}),
        result.get("latency", {}).get("ramp", {}),
    )
    scorer_p99 = paced.get("scorer", {}).get("p99_ms")
    echo_p99 = paced.get("echo", {}).get("p99_ms")
    scorer_knee = ramps.get("scorer", {}).get("knee_tx_per_s")
    echo_knee = ramps.get("echo", {}).get("knee_tx_per_s")
    rest_p99 = result.get("rest", {}).get("latency", {}).get("p99_ms")

    def check(value: float | None, ok: bool) -> dict[str, Any]:
        return {"value": value, "met": ok if value is not None else None}

    ratio = result.get("naive_ratio")
    knee_share = scorer_knee / echo_knee if scorer_knee is not None and echo_knee else None
    knee_check = check(knee_share, (knee_share or 0) >= KNEE_SHARE_TARGET)
    if knee_share is not None:
        knee_check = _bounded_share(
            knee_share,
            scorer_found=knee_limit(ramps["scorer"]) == "sla",
            echo_found=knee_limit(ramps["echo"]) == "sla",
        )
    over_echo = scorer_p99 - echo_p99 if scorer_p99 is not None and echo_p99 is not None else None
    tx_s, cpu, rss = (
        backlog.get("tx_per_s"),
        backlog.get("cpu_us_per_tx"),
        backlog.get("max_rss_mb"),
    )
    backlog_share = scorer_knee / tx_s if scorer_knee is not None and tx_s else None
    backlog_check = check(backlog_share, (backlog_share or 0) >= KNEE_BACKLOG_TARGET)
    if backlog_share is not None and knee_limit(ramps["scorer"]) != "sla":
        # the ramp never found the SLA's limit: the share is only a lower bound
        met = True if backlog_share >= KNEE_BACKLOG_TARGET else None
        backlog_check = {"value": backlog_share, "met": met, "bound": "lower"}
    return {
        "backlog_tx_per_s>=10000": check(tx_s, (tx_s or 0) >= 10_000),
        "cpu_us_per_tx<=100": check(cpu, (cpu or 1e9) <= 100),
        "cpu_us_per_tx<=30": check(cpu, (cpu or 1e9) <= 30),
        "knee_share_of_backlog>=0.6": backlog_check,
        "rss_mb<=300": check(rss, (rss or 1e9) <= 300),
        "scorer_p99_ms<=50": check(scorer_p99, (scorer_p99 or 1e9) <= 50),
        "scorer_p99_minus_echo_p99_ms<=10": check(over_echo, (over_echo or 1e9) <= 10),
        "knee_share_of_echo>=0.8": knee_check,
        "naive_ratio>=20": check(ratio, (ratio or 0) >= 20),
        "rest_p99_ms<=10": check(rest_p99, (rest_p99 or 1e9) <= 10),
        "naive_decisions": naive.get("decided"),
        **mix_targets(result.get("mixes", {})),
        **card_targets(result.get("cards", {})),
    }


def mix_targets(mixes: dict[str, Any]) -> dict[str, Any]:
    """Per mix: scorer p99 within the SLA and within 15 ms of the echo floor's p99."""
    out: dict[str, Any] = {}
    for mix, m in mixes.items():
        p99, over = m["scorer"].get("p99_ms"), m.get("p99_over_echo_ms")
        out[f"{mix}:scorer_p99_ms<=50"] = {"value": p99, "met": None if p99 is None else p99 <= 50}
        out[f"{mix}:p99_minus_echo_p99_ms<=15"] = {
            "value": over,
            "met": None if over is None else over <= 15,
        }
    if "attack" in mixes:
        rate = mixes["attack"].get("flag_rate")
        out["attack:flag_rate>=0.10"] = {
            "value": rate,
            "met": None if rate is None else rate >= 0.1,
        }
    return out


def _bounded_share(share: float, *, scorer_found: bool, echo_found: bool) -> dict[str, Any]:
    """The knee share's check when a knee may be only a lower bound (no step of its ramp
    missed the SLA): an echo knee not found makes the share an upper bound, a scorer knee
    not found a lower one; ``met`` is ``None`` where the bound cannot decide."""
    out: dict[str, Any] = {"value": share, "met": share >= KNEE_SHARE_TARGET}
    if scorer_found and not echo_found:
        out |= {"bound": "upper", "met": False if share < KNEE_SHARE_TARGET else None}
    elif echo_found and not scorer_found:
        out |= {"bound": "lower", "met": True if share >= KNEE_SHARE_TARGET else None}
    elif not (echo_found or scorer_found):
        out |= {"bound": "unknown", "met": None}
    return out


def knee_reach(result: dict[str, Any]) -> dict[str, Any] | None:
    """Whether the knee target is within the scorer's throughput at all: the rate it would
    have to hold within the SLA (:data:`KNEE_SHARE_TARGET` of the echo's knee - at least
    that when the echo's knee is a lower bound) beside what its backlog run decided with no
    latency bound and 500-record batches. A target beyond that ceiling is out of reach of
    any pacing or batching; only a cheaper transaction moves it."""
    echo = result.get("latency", {}).get("ramp", {}).get("echo", {})
    echo_knee = echo.get("knee_tx_per_s")
    ceiling = result.get("backlog", {}).get("tx_per_s")
    if not echo_knee or not ceiling:
        return None
    needed = KNEE_SHARE_TARGET * echo_knee
    return {
        "needed_tx_per_s": needed,
        "needed_is_lower_bound": knee_limit(echo) != "sla",
        "backlog_tx_per_s": ceiling,
        "beyond_backlog": needed > ceiling,
    }


def knee_reach_line(reach: dict[str, Any]) -> str:
    at_least = ">= " if reach["needed_is_lower_bound"] else ""
    verdict = "beyond" if reach["beyond_backlog"] else "within"
    return (
        f"knee target needs the scorer to hold {at_least}{reach['needed_tx_per_s']:,.0f} tx/s "
        f"within the SLA; its backlog run (no latency bound) decided "
        f"{reach['backlog_tx_per_s']:,.0f} tx/s: {verdict} its throughput"
    )


def run_scorer_bench(
    config: ScorerBenchConfig, *, redis_url: str, state_dir: Path, log: Log = print
) -> dict[str, Any]:
    """Every phase of the scorer benchmark (see the module doc); returns the numbers."""
    result: dict[str, Any] = {
        "benchmark": "scorer",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": asdict(config),
    }
    on = set(config.phases)
    world_rows = (
        config.backlog * ("backlog" in on)
        + config.naive * ("naive" in on)
        + len(REST_DELIVERIES) * round(config.rest_rps * config.rest_duration_s + 100)
    )
    with bench_environment(
        redis_url=redis_url,
        state_dir=state_dir,
        bootstrap=config.bootstrap,
        world_rows=world_rows + 1_000,
        log=log,
    ) as env:
        result["model_version"] = env.champion
        probes = {"redis": redis_cpu(redis.Redis.from_url(redis_url))}
        if env.broker_pid is not None:
            probes["broker"] = process_tree_cpu(env.broker_pid)
        result["broker"] = "own noida-db" if env.broker_pid is not None else env.bootstrap
        sampler = CpuSampler(probes).start()
        try:
            if "backlog" in on:
                result["backlog"] = backlog_phase(env, config.backlog, sampler, log)
                log(backlog_line(result["backlog"]))
            if "naive" in on:
                result["naive"] = naive_phase(env, config.naive, sampler, log)
                naive_rate = result["naive"].get("tx_per_s") or 0.0
                backlog_rate = result.get("backlog", {}).get("tx_per_s")
                result["naive_ratio"] = backlog_rate / naive_rate if naive_rate else None
                log(f"  naive {naive_rate:,.0f} tx/s -> ratio {result['naive_ratio'] or 0:.1f}x")
            if "latency" in on:
                result["latency"] = latency_phase(env, config, sampler, log)
            if "mixes" in on:
                paced = result.get("latency", {}).get("paced", {})
                result["mixes"] = mixes_phase(env, config, sampler, log, paced)
            if "rest" in on:
                result["rest"] = rest_phase(env, config, log)
            if "cards" in on:
                result["cards"] = cards_phase(env, config, sampler, log)
        finally:
            sampler.stop()
    result["targets"] = targets(result)
    result["knee_reach"] = knee_reach(result)
    return result


def backlog_line(b: dict[str, Any]) -> str:
    stages = " ".join(f"{k}={v:.1f}" for k, v in b.get("stage_us_per_tx", {}).items())
    return (
        f"  backlog {b['decided']:,} decided: {b['tx_per_s']:,.0f} tx/s, "
        f"cpu {b['cpu_us_per_tx']:.1f} us/tx, minor faults "
        f"{b.get('minor_faults_per_tx', float('nan')):.2f}/tx, rss {b['max_rss_mb']:.0f} MB, "
        f"broker cpu {b.get('broker_cpu_pct')}%, redis cpu {b.get('redis_cpu_pct')}%\n"
        f"  stages us/tx: {stages}\n"
        f"  collector: {collector_text(b)}"
    )
