"""End-to-end latency at a paced rate: produce -> output readable, for any consume/produce service.

A step sends ``rate * duration`` simulator transactions with the project's own paced
producer (:func:`streams.simulator.stream_transactions`, in a separate process so its CPU
is not the reader's) and reads the service's output from the offsets it had before the
step. Latency of one record = the moment it became readable on the output topic minus the
transaction's produce timestamp. The produce timestamp comes from the output record:

* scorer (``transactions.scored``): the Decision's ``decided_at - latency_ms`` is the
  transaction's produce timestamp as the scorer saw it on the input record;
* echo: the copy carries the input record's timestamp in a header.

When it became readable, two ways (:data:`ReaderMode`):

* ``append-time`` (default): the output topic stamps each record with the broker's append
  time (``message.timestamp.type=LogAppendTime``), the moment a consumer can fetch it.
  The reader stays off the machine during the step - it asks for the partitions' end
  offsets four times a second - and reads the records after the step.
* ``live``: a consumer reads during the step; readable = when it got the record. On the
  embedded broker, which answers empty fetches at once, that consumer's fetch loop costs
  most of a core of this 2-core box (its own librdkafka thread plus the broker serving
  it) - CPU the services under test then lack - so this mode measures the reader too.

A ramp runs steps of increasing rate past the SLA until the service is overloaded (p99
over 4x the SLA, records missing, or the producer unable to keep the rate); the knee is the
highest rate of the unbroken run of steps that met the SLA. When no step missed it, the knee
is only a lower bound, and the ramp says what bounded it (its top rate, or the rate the
load generator could keep). Each step records the CPU of the broker, Redis, the service and
the load generator over the step, so the box's two cores can be accounted for.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Message, TopicPartition

from loadtest.bench_setup import ROOT, BenchError, CpuSampler, process_tree_cpu
from loadtest.echo import PRODUCED_AT_HEADER
from loadtest.mixes import MIXES, Mix, generator, paced_produce
from streams.kafka import consumer_config

OutputKind = Literal["decision", "echo"]
ReaderMode = Literal["append-time", "live"]
SLA_P99_MS = 50.0
APPEND_TIME_CONFIG = {"message.timestamp.type": "LogAppendTime"}
"""Topic config of an output topic read in ``append-time`` mode."""
END_OFFSETS_INTERVAL_S = 0.25


class _Stamp(msgspec.Struct):
    """The two fields of a Decision the reader needs (the rest is skipped unparsed)."""

    decided_at: datetime | None = None
    latency_ms: float | None = None
    decision: str = "approve"


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def percentiles(latencies_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(latencies_ms, dtype=np.float64)
    if not len(a):
        return {"n": 0}
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


class OutputReader:
    """Reads a service's output topic from a mark and turns each record into a latency."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        kind: OutputKind,
        mode: ReaderMode = "append-time",
    ) -> None:
        self.topic, self.partitions, self.kind, self.mode = topic, partitions, kind, mode
        self.consumer = Consumer(
            consumer_config(
                bootstrap, group_id=f"bench-reader-{uuid.uuid4().hex[:8]}", client_id="reader"
            )
        )
        self._marks: list[int] = []
        self.flagged = 0
        """Decisions read since the mark whose outcome is not ``approve``."""

    def mark(self) -> None:
        """Read from the current end of every partition (live: start consuming there)."""
        self._marks = [self._end_offset(p) for p in range(self.partitions)]
        self.flagged = 0
        if self.mode == "live":
            self.consumer.assign(self._positions(self._marks))

    def _end_offset(self, partition: int) -> int:
        _, high = self.consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), 10, cached=False
        )
        return int(high)

    def _positions(self, offsets: Sequence[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p, o) for p, o in enumerate(offsets)]

    def _produced_ms(self, m: Message) -> float:
        if self.kind == "echo":
            stamp = dict(m.headers() or ()).get(PRODUCED_AT_HEADER)
            return float(stamp) if stamp else float("nan")
        decision = _stamp_decoder.decode(m.value() or b"{}")
        self.flagged += decision.decision != "approve"
        if decision.decided_at is None or decision.latency_ms is None:
            return float("nan")
        return decision.decided_at.timestamp() * 1e3 - decision.latency_ms

    def collect(
        self,
        expected: int,
        timeout_s: float,
        *,
        sender_done: Callable[[], bool] = lambda: True,
        idle_s: float = 5.0,
    ) -> tuple[np.ndarray, float, float]:
        """Latencies (ms) of up to ``expected`` records; wall times of the first and last.

        Stops early once the sender is done and nothing arrived for ``idle_s``. The
        garbage collector is off meanwhile: the bench process holds the simulated world
        (hundreds of thousands of objects), and a full collection would stall a live
        reader for tens of milliseconds - time that would be measured as the service's.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            if self.mode == "live":
                return self._collect_live(expected, timeout_s, sender_done, idle_s)
            ends = self._wait_for_output(expected, timeout_s, sender_done, idle_s)
            return self._read_appended(ends)
        finally:
            if was_enabled:
                gc.enable()

    def _wait_for_output(
        self, expected: int, timeout_s: float, sender_done: Callable[[], bool], idle_s: float
    ) -> list[int]:
        """The end offsets once ``expected`` records are out, or the output went quiet."""
        started = time.monotonic()
        quiet_since, seen = started, 0
        while True:
            time.sleep(END_OFFSETS_INTERVAL_S)
            ends = [self._end_offset(p) for p in range(self.partitions)]
            count = sum(e - m for e, m in zip(ends, self._marks, strict=True))
            now = time.monotonic()
            if count != seen:
                quiet_since, seen = now, count
            if (
                count >= expected
                or now - started > timeout_s
                or (sender_done() and now - quiet_since > idle_s)
            ):
                return ends

    def _read_appended(self, ends: Sequence[int]) -> tuple[np.ndarray, float, float]:
        """Records between the marks and ``ends``: append time minus produce time.

        One partition at a time: the embedded broker ignores the fetch size limits
        (``max.partition.fetch.bytes``, ``fetch.max.bytes``) and answers a fetch with
        everything from the fetch offset to the log end. Assigned all six partitions of a
        12,000 tx/s step's output at once, it answered with one 103.7 MB response, more
        than librdkafka accepts (``receive.message.max.bytes``, 100 MB), and the bench
        failed; one partition of such a step is ~1/6 of that."""
        out: list[float] = []
        appended: list[float] = []
        for partition, end in enumerate(ends):
            if end > self._marks[partition]:
                self._read_partition(partition, end, out, appended)
        first, last = (min(appended), max(appended)) if appended else (0.0, 0.0)
        return np.asarray(out, dtype=np.float64), first, last

    def _read_partition(
        self, partition: int, end: int, out: list[float], appended: list[float]
    ) -> None:
        position = self._marks[partition]
        self.consumer.assign([TopicPartition(self.topic, partition, position)])
        try:
            while True:
                # no more than are left: consume() waits for as many as it asks for
                batch = self.consumer.consume(min(5000, end - position), 5.0)
                if not batch:
                    detail = f"partition {partition} records up to {end} could not be read"
                    raise BenchError(f"{self.topic}: {detail}")
                for m in batch:
                    offset = int(m.offset() or 0)
                    if m.error() is not None:
                        continue
                    if offset >= end:  # past the step's output
                        return
                    position = offset + 1
                    kind, at_ms = m.timestamp()
                    if kind != TIMESTAMP_LOG_APPEND_TIME:
                        raise BenchError(f"{self.topic} does not stamp append times")
                    appended.append(at_ms / 1e3)
                    out.append(at_ms - self._produced_ms(m))
                    if offset + 1 >= end:
                        return
        finally:
            self.consumer.unassign()  # an assigned consumer keeps fetching: not during a step

    def _collect_live(
        self, expected: int, timeout_s: float, sender_done: Callable[[], bool], idle_s: float
    ) -> tuple[np.ndarray, float, float]:
        out: list[float] = []
        first = last = 0.0
        started = time.monotonic()
        deadline = started + timeout_s
        quiet_since = started
        while len(out) < expected and time.monotonic() < deadline:
            head = self.consumer.poll(0.05)
            if head is None:
                if sender_done() and time.monotonic() - quiet_since > idle_s:
                    break
                continue
            batch = [head, *self.consumer.consume(5000, 0)]
            now = time.time()
            quiet_since = time.monotonic()
            first = first or now
            last = now
            for m in batch:
                if m.error() is None:
                    out.append(now * 1e3 - self._produced_ms(m))
        return np.asarray(out, dtype=np.float64), first, last

    def close(self) -> None:
        self.consumer.close()


@dataclass(frozen=True)
class Service:
    """A running consume -> produce service under test and how to read its output."""

    name: str
    input_topic: str
    reader: OutputReader
    pid: int
    cpu_probe: str = ""
    """The :class:`CpuSampler` probe of this process (default: ``name``)."""


def paced_producer_args(
    bootstrap: str,
    topic: str,
    rate: float,
    duration_s: float,
    run_id: str,
    out: Path,
    mix: Mix = "normal",
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loadtest.latency",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--rate",
        str(rate),
        "--duration",
        str(duration_s),
        "--run-id",
        run_id,
        "--out",
        str(out),
        "--mix",
        mix,
    ]


def measure_step(
    service: Service,
    *,
    bootstrap: str,
    rate: float,
    duration_s: float,
    workdir: Path,
    sampler: CpuSampler | None = None,
    drain_s: float = 10.0,
    mix: Mix = "normal",
) -> dict[str, Any]:
    """One paced step of ``mix`` traffic against ``service``: latency percentiles, rates,
    CPU shares, and (for decisions) the share flagged."""
    run_id = uuid.uuid4().hex[:10]
    report_path = workdir / f"producer-{service.name}-{run_id}.json"
    expected = round(rate * duration_s)
    log_path = report_path.with_suffix(".log")
    service.reader.mark()
    with log_path.open("wb") as log:
        producer = subprocess.Popen(
            paced_producer_args(
                bootstrap, service.input_topic, rate, duration_s, run_id, report_path, mix
            ),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    generator = f"generator-{run_id}"  # a probe per process: its CPU counter starts at 0
    if sampler is not None:
        sampler.add(generator, process_tree_cpu(producer.pid))
    latencies, first, last = service.reader.collect(
        expected,
        duration_s + 60 + drain_s,
        sender_done=lambda: producer.poll() is not None,
        idle_s=drain_s,
    )
    producer.wait(timeout=duration_s * 3 + 120)
    if producer.returncode != 0 or not report_path.exists():
        tail = log_path.read_text(errors="replace")[-2000:]
        return {"service": service.name, "target_rate": rate, "error": tail or "no report"}
    sent = json.loads(report_path.read_text())
    stats = percentiles(latencies[~np.isnan(latencies)])
    step: dict[str, Any] = {
        "service": service.name,
        "mix": mix,
        "target_rate": rate,
        "duration_s": duration_s,
        "sent": sent["count"],
        "achieved_rate": sent["achieved_rate"],
        "received": len(latencies),
        "missing": max(0, sent["count"] - len(latencies)),
        **stats,
    }
    if service.reader.kind == "decision" and len(latencies):
        step["flagged"] = service.reader.flagged
        step["flag_rate"] = round(service.reader.flagged / len(latencies), 5)
    if sampler is not None:
        if last > first:
            step["broker_cpu_pct"] = sampler.share("broker", first, last)
            step["redis_cpu_pct"] = sampler.share("redis", first, last)
            probe = service.cpu_probe or service.name
            step["service_cpu_pct"] = sampler.share(probe, first, last)
            step["generator_cpu_pct"] = sampler.share(generator, first, last)
        sampler.remove(generator)
    return step


def step_passes(step: dict[str, Any], sla_p99_ms: float = SLA_P99_MS) -> bool:
    return (
        "error" not in step
        and step.get("missing", 1) == 0
        and step.get("p99_ms", float("inf")) <= sla_p99_ms
        and step.get("achieved_rate", 0.0) >= 0.9 * step["target_rate"]
    )


KneeLimit = Literal["sla", "ramp_top", "load_generator"]
"""What ended the knee's run of steps: a step missing the SLA (the knee is found), or no
such step up to the ramp's top rate or up to the rate the producer could keep (then the
knee is only a lower bound)."""


def knee_limit(ramp_result: dict[str, Any]) -> KneeLimit:
    """What ended a ramp's knee; results written before ramps said so read as ``sla``
    (their knee was taken as found)."""
    limit: KneeLimit = ramp_result.get("knee_limit", "sla")
    return limit


def ramp(
    measure: Callable[[float], dict[str, Any]],
    rates: Sequence[float],
    sla_p99_ms: float = SLA_P99_MS,
    log: Callable[[str], None] = print,
    overload_p99_ms: float | None = None,
) -> dict[str, Any]:
    """Steps at increasing ``rates``; the knee is the highest rate of the unbroken run of
    steps from the first one that meet the SLA.

    Stepping goes on past an SLA miss - so the latency-vs-throughput curve shows where and
    how fast latency grows - until a step is overloaded: p99 over ``overload_p99_ms``
    (default 4x the SLA), records missing, or the producer unable to keep the rate.
    ``knee_limit`` says whether the knee was found (``sla``) or is a lower bound.
    """
    overload = overload_p99_ms if overload_p99_ms is not None else 4 * sla_p99_ms
    steps: list[dict[str, Any]] = []
    for rate in rates:
        step = measure(rate)
        steps.append(step)
        log(format_step(step))
        if not step_passes(step, overload):
            break
    knee = 0.0
    limit: KneeLimit = "ramp_top"
    for step in steps:
        if not step_passes(step, sla_p99_ms):
            behind = _only_the_producer_fell_behind(step, sla_p99_ms)
            limit = "load_generator" if behind else "sla"
            break
        knee = max(knee, float(step["achieved_rate"]))
    return {
        "sla_p99_ms": sla_p99_ms,
        "overload_p99_ms": overload,
        "steps": steps,
        "knee_tx_per_s": knee,
        "knee_limit": limit,
    }


def _only_the_producer_fell_behind(step: dict[str, Any], sla_p99_ms: float) -> bool:
    """The step fails, yet would pass had the producer kept the rate."""
    kept = {**step, "achieved_rate": step["target_rate"]}
    return not step_passes(step, sla_p99_ms) and step_passes(kept, sla_p99_ms)


def format_step(step: dict[str, Any]) -> str:
    if "error" in step:
        return (
            f"  {step['service']:<6} {step['target_rate']:>7.0f}/s  error: {step['error'][-200:]}"
        )
    cpu = ""
    if step.get("broker_cpu_pct") is not None:
        cpu = (
            f"  cpu% broker {step['broker_cpu_pct']} service {step.get('service_cpu_pct')}"
            f" redis {step.get('redis_cpu_pct')} generator {step.get('generator_cpu_pct')}"
        )
    return (
        f"  {step['service']:<6} {step['target_rate']:>7.0f}/s (achieved "
        f"{step['achieved_rate']:>7.0f})  p50 {step.get('p50_ms', 0):6.1f}  p95 "
        f"{step.get('p95_ms', 0):6.1f}  p99 {step.get('p99_ms', 0):6.1f}  max "
        f"{step.get('max_ms', 0):7.1f} ms  missing {step['missing']}{cpu}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The paced producer of one step (a separate process)."""
    from loadtest.bench_setup import BENCH_SEED, HISTORY_DAYS
    from streams.simulator import Simulator, SimulatorConfig, stream_transactions

    parser = argparse.ArgumentParser(description="paced simulator producer of one bench step")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mix", choices=MIXES, default="normal")
    args = parser.parse_args(argv)

    def simulator() -> Simulator:
        return Simulator(SimulatorConfig.default(seed=BENCH_SEED), run_id=args.run_id)

    if args.mix != "normal":
        sent = paced_produce(
            generator(args.mix, simulator, HISTORY_DAYS),
            bootstrap=args.bootstrap,
            topic=args.topic,
            rate=args.rate,
            duration_s=args.duration,
        )
        args.out.write_text(json.dumps(sent) + "\n")
        return
    report = stream_transactions(
        simulator(),
        bootstrap=args.bootstrap,
        topic=args.topic,
        rate=args.rate,
        duration_s=args.duration,
        first_day=HISTORY_DAYS,
        client_id="bench-producer",
        warm_up=True,
    )
    args.out.write_text(json.dumps(report.as_dict()) + "\n")


if __name__ == "__main__":  # pragma: no cover - run by measure_step
    main()
