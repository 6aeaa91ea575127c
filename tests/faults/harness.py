"""The fault-injection harness: a broker and a Redis of the case's own, two real scorer
processes, a paced producer, a watcher of the decisions, and the outcome of a run.

A case never touches the shared broker and Redis of the other tests: it starts its own
(``start_broker`` / ``start_redis`` on free loopback ports, data under the case's tmp
folder), so it can stop, pause, restart or flush them.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from services.stack.components import start_broker, start_redis, stop_broker
from services.stack.process import ManagedProcess, free_port, stop
from streams.events import Transaction
from streams.kafka import consumer_config, ensure_topics, producer_config
from streams.serde import encode
from streams.topics import SCORED, TRANSACTIONS, Topics
from tests.integration.scorer_helpers import (
    committed_equals_end,
    decode_decisions,
    read_all,
    review_decoder,
    scorer_env,
)
from tests.processes import ServiceProcess

SCORER = [sys.executable, "-m", "services.scorer"]
RATE = 1_000.0
"""Transactions per second of every case's stream."""
SCORER_SETTINGS = {
    # shortened so that a case's stall outlasts them in seconds, not minutes
    "FRAUD_SESSION_TIMEOUT_MS": "6000",
    "FRAUD_MAX_POLL_INTERVAL_MS": "10000",
    "FRAUD_DELIVERY_TIMEOUT_MS": "5000",
    "FRAUD_PROGRESS_LOG_S": "5",
    "FRAUD_STATS_INTERVAL_MS": "1000",
}


@dataclass(frozen=True)
class Reference:
    """What a fault-free run decided: the feature vector and outcome per transaction."""

    features: dict[str, list[float]]
    flagged: frozenset[str]


class OwnBroker:
    """A noida-db broker on a free port, restartable on the same port and data folder."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.data = root / "kafka"
        self.log = root / "kafka.log"
        self.process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_broker(self.address, self.data, self.log)

    def stop(self) -> None:
        """Stop the broker as an operator would: it saves what it acknowledged first."""
        if self.process is not None:
            stop_broker(self.process)
            self.process = None

    def crash(self) -> None:
        """SIGKILL: the embedded broker loses what it acknowledged since it last saved."""
        if self.process is not None:
            stop(self.process, grace_s=0.5)
            self.process = None


class OwnRedis:
    """A redis-server on a free port (persisted as the stack runs it), restartable."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.data = root / "redis"
        self.log = root / "redis.log"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_redis(self.data, self.log, port=self.port)

    def stop(self) -> None:
        """SIGTERM: Redis writes its files and exits; ``start`` loads them again."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5.0)


class _Id(msgspec.Struct):
    transaction_id: str


_id_decoder = msgspec.json.Decoder(_Id)


class DecisionWatcher(threading.Thread):
    """Reads ``transactions.scored`` as it grows: when each transaction_id was first seen
    (monotonic seconds) and how many decisions there are in all."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(name="decision-watcher", daemon=True)
        self.consumer = Consumer(
            consumer_config(
                bootstrap, group_id=f"watch-{uuid.uuid4().hex[:8]}", client_id="fault-watcher"
            )
        )
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self.first_seen: dict[str, float] = {}
        self.total = 0
        self.running = True

    def run(self) -> None:
        try:
            while self.running:
                for message in self.consumer.consume(1000, 0.2):
                    if message.error() is not None:
                        continue
                    now = time.monotonic()
                    self.total += 1
                    tid = _id_decoder.decode(message.value() or b"").transaction_id
                    self.first_seen.setdefault(tid, now)
        finally:
            self.consumer.close()

    def decided(self) -> int:
        return len(self.first_seen)


class PacedProducer(threading.Thread):
    """Sends the transactions keyed by card_id at ``rate`` per second. Its records never
    time out locally, so what it produces while the broker is down arrives after."""

    def __init__(self, bootstrap: str, topic: str, transactions: Sequence[Transaction]) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.producer = Producer(
            producer_config(bootstrap, client_id="fault-producer", **{"message.timeout.ms": 0})
        )
        self.topic = topic
        self.transactions = transactions
        self.sent = 0
        self.failed = 0

    def _report(self, err: object, _msg: object) -> None:
        if err is not None:
            self.failed += 1

    def run(self) -> None:
        started = time.monotonic()
        for i, tx in enumerate(self.transactions):
            self.producer.produce(self.topic, encode(tx), key=tx.card_id, on_delivery=self._report)
            self.sent = i + 1
            if i % 50 == 0:
                ahead = i / RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                self.producer.poll(0)
        while self.producer.flush(1.0):
            pass
        self.producer.close()


@dataclass
class Outcome:
    """What one fault case produced, measured before anything is asserted."""

    fault: str
    transactions: int
    decisions: int
    duplicates: int
    lost: int
    review_cases: int
    review_duplicates: int
    review_missing: int
    review_unexplained: int
    """Review cases without reasons (every flagged transaction's case carries them)."""
    features_differ: int
    committed_to_end: bool
    recovery_s: float | None
    scorer_exits: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        return asdict(self)

    def assert_exactly_once(self) -> None:
        """One decision per transaction, every flagged one reviewed once with its reasons,
        offsets committed to the end, features equal to the fault-free run."""
        summary = json.dumps(self.row())
        assert self.lost == 0, summary
        assert self.duplicates == 0, summary
        assert self.decisions == self.transactions, summary
        assert self.review_duplicates == 0 and self.review_missing == 0, summary
        assert self.review_unexplained == 0, summary
        assert self.features_differ == 0, summary
        assert self.committed_to_end, summary


class FaultRun:
    """One case: its own broker and Redis, ``scorers`` scorer processes, the stream."""

    def __init__(
        self,
        root: Path,
        state: Path,
        transactions: Sequence[Transaction],
        *,
        scorers: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.state = state
        self.transactions = transactions
        self.broker = OwnBroker(root)
        self.redis = OwnRedis(root)
        self.topics = Topics(prefix=f"f{uuid.uuid4().hex[:8]}.")
        self.redis_prefix = f"fault{uuid.uuid4().hex[:8]}"
        self.extra_env = dict(env or {})
        self.names = [f"scorer-{i}" for i in range(scorers)]
        self.processes: dict[str, ServiceProcess] = {}
        self.metrics_ports: dict[str, int] = {}
        self.starts: Counter[str] = Counter()
        self.exits: list[int] = []
        self.producer: PacedProducer | None = None
        self.watcher: DecisionWatcher | None = None
        self.heal_at: float | None = None
        self.produced_at_heal = 0
        self.notes: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> FaultRun:
        try:
            self.broker.start()
            self.redis.start()
            ensure_topics(self.broker.address, self.topics)
            for name in self.names:
                self.start_scorer(name)
            self.wait_assigned()
            self.watcher = DecisionWatcher(
                self.broker.address, self.topics.scored, self.topics.partition_count(SCORED)
            )
            self.watcher.start()
        except BaseException:
            self.__exit__()  # nothing this run started outlives it
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.resume()
            with contextlib.suppress(Exception):
                process.kill()
        if self.watcher is not None:
            self.watcher.running = False
            self.watcher.join(10)
        self.broker.stop()
        self.redis.stop()

    def env(self, name: str, **overrides: str) -> dict[str, str]:
        base = scorer_env(
            self.broker.address, self.redis.url, self.topics, self.redis_prefix, self.state, name
        )
        return {**base, **SCORER_SETTINGS, **self.extra_env, **overrides}

    def start_scorer(self, name: str, **overrides: str) -> ServiceProcess:
        """Start (or restart: same static member id) the scorer ``name``."""
        self.starts[name] += 1
        port = self.metrics_ports.setdefault(name, free_port())
        log = self.root / f"{name}.{self.starts[name]}.log"
        process = ServiceProcess(
            ["--metrics-port", str(port)], self.env(name, **overrides), log, command=SCORER
        )
        self.processes[name] = process
        return process

    def scorer(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def wait_assigned(self, timeout_s: float = 90.0) -> None:
        """Until the live scorers' latest assignments cover every partition."""
        partitions = set(range(self.topics.partition_count(TRANSACTIONS)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            held: set[int] = set()
            for process in self.processes.values():
                lines = [ln for ln in process.output().splitlines() if "stage=assign " in ln]
                if lines:
                    last = lines[-1].rsplit("partitions=", 1)[1].split()[0]
                    held |= {int(p) for p in last.split(",") if p != "-"}
            if held == partitions:
                return
            time.sleep(0.2)
        raise AssertionError(f"scorers not assigned every partition: {self.logs_tail()}")

    # -- the stream ---------------------------------------------------------------------
    def start_stream(self) -> None:
        self.producer = PacedProducer(
            self.broker.address, self.topics.transactions, self.transactions
        )
        self.producer.start()

    def wait_decided(self, count: int, timeout_s: float = 120.0) -> None:
        """Until ``count`` transactions have a decision (the fault then lands mid-stream)."""
        assert self.watcher is not None
        deadline = time.monotonic() + timeout_s
        while self.watcher.decided() < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.watcher.decided()} of {count} decided: {self.logs_tail()}"
                )
            time.sleep(0.1)

    def healed(self) -> None:
        """The fault is over: recovery time is measured from here."""
        assert self.producer is not None
        self.heal_at = time.monotonic()
        self.produced_at_heal = self.producer.sent

    def finish(self, timeout_s: float = 150.0) -> None:
        """Let the stream end and every transaction be decided (or the time run out), then
        stop the scorers with SIGTERM."""
        assert self.producer is not None and self.watcher is not None
        self.producer.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.watcher.decided() < len(self.transactions):
            time.sleep(0.2)
        time.sleep(2.0)  # late duplicates, and the last commits
        for process in self.processes.values():
            if process.alive():
                self.exits.append(process.terminate())

    # -- what happened --------------------------------------------------------------------
    def outcome(self, fault: str, reference: Reference) -> Outcome:
        assert self.watcher is not None
        decisions = decode_decisions(read_all(self.broker.address, self.topics.scored))
        counts = Counter(d.transaction_id for d in decisions)
        expected = {t.transaction_id for t in self.transactions}
        cases = [
            review_decoder.decode(m.value())
            for m in read_all(self.broker.address, self.topics.review)
        ]
        case_counts = Counter(c.case_id for c in cases)  # type: ignore[union-attr]
        flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
        differ = sum(
            1
            for d in decisions
            if d.transaction_id in reference.features
            and d.features != reference.features[d.transaction_id]
        )
        return Outcome(
            fault=fault,
            transactions=len(self.transactions),
            decisions=len(decisions),
            duplicates=sum(n - 1 for n in counts.values()),
            lost=len(expected - set(counts)),
            review_cases=len(cases),
            review_duplicates=sum(n - 1 for n in case_counts.values()),
            review_missing=len(flagged - set(case_counts)),
            review_unexplained=sum(1 for c in cases if not c.reasons),  # type: ignore[union-attr]
            features_differ=differ,
            committed_to_end=committed_equals_end(
                self.broker.address,
                self.env(self.names[0])["FRAUD_GROUP_ID"],
                self.topics.transactions,
                self.topics.partition_count(TRANSACTIONS),
            ),
            recovery_s=self.recovery_s(),
            scorer_exits=self.exits,
            notes=self.notes,
        )

    def recovery_s(self) -> float | None:
        """From the heal until every transaction produced before it had a decision."""
        assert self.watcher is not None
        if self.heal_at is None:
            return None
        seen = self.watcher.first_seen
        owed = [seen.get(t.transaction_id) for t in self.transactions[: self.produced_at_heal]]
        if not owed or any(t is None for t in owed):
            return None
        return round(max(0.0, max(t for t in owed if t is not None) - self.heal_at), 2)

    def logs_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {name}\n{p.output()[-chars:]}" for name, p in self.processes.items())

    def logs(self) -> str:
        """Every scorer log of the run, restarts included."""
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.root.glob("scorer-*.log"))
        )

    def scrape(self, name: str) -> dict[str, float]:
        """The scorer's ``fraud_*`` samples (``name{labels}`` -> value); {} if silent."""
        url = f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            return {}
        samples = {}
        for line in body.splitlines():
            if line.startswith("fraud_"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    samples[key] = float(value)
        return samples

    def fault_visible(self, fault: str, names: Sequence[str] | None = None) -> bool:
        """Whether a live scorer reports ``fault`` as active now (its gauge)."""
        key = f'fraud_fault_active{{fault="{fault}"}}'
        return any(self.scrape(n).get(key) == 1.0 for n in names or self.names)

    def fault_logged(self, fault: str) -> bool:
        """Whether a scorer logged the fault's beginning and its end."""
        logs = self.logs()
        return (
            f"stage=fault fault={fault} state=begin" in logs
            and f"stage=fault fault={fault} state=end" in logs
        )

    def wait_for(self, check: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``check`` until true; the seconds it took."""
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"{what} not seen in {timeout_s}s: {self.logs_tail()}")
            time.sleep(0.2)
        return time.monotonic() - started
