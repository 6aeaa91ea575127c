"""What every scorer benchmark run needs: a broker, a champion, profiles, a world, CPU probes.

* :func:`bench_environment` - a noida-db broker of its own on a free port (or a given one),
  a champion model (reused from ``<state>/bench/registry`` when it still loads, else
  trained on the small simulated world as the integration tests do), the Feast profiles
  of the handbook-sized world's first :data:`HISTORY_DAYS` days materialised into a
  throw-away project, a unique Redis key prefix; everything is removed afterwards.
* :class:`WorldStream` - the same world's transactions after the history, in event order.
* :class:`CpuSampler` - cumulative CPU seconds of the broker, Redis and service processes
  sampled in the background, so any time window's CPU share can be read afterwards.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import redis
from confluent_kafka import Producer

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from models.errors import ModelError
from models.registry import ModelRegistry
from models.serving import ServingModel
from services.stack.components import start_broker
from services.stack.process import ManagedProcess, free_port, stop
from streams.errors import FraudError
from streams.events import Transaction
from streams.kafka import (
    delete_topics,
    ensure_topics,
    producer_config,
    wait_for_broker,
    warm_up_topic,
)
from streams.simulator import SimulatorConfig, simulate_history
from streams.simulator.history import DEFAULT_START
from streams.topics import SCORED, Topics

ROOT = Path(__file__).resolve().parents[1]
BENCH_SEED = 2024
HISTORY_DAYS = 14
"""Days of the world materialised as profiles before the benchmark's transactions."""
ROWS_PER_DAY_GUESS = 9_000


class BenchError(FraudError):
    """A benchmark could not run (a service did not start, a phase got no output)."""


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load1, load5, load15 = os.getloadavg()
    versions = {}
    for package in ("noida-db", "confluent-kafka", "onnxruntime", "lightgbm", "redis", "feast"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# -- CPU probes ---------------------------------------------------------------------------
def process_tree_cpu(pid: int) -> Callable[[], float]:
    """Cumulative CPU seconds (user + system) of ``pid`` and its children."""

    def read() -> float:
        try:
            root = psutil.Process(pid)
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return float("nan")

    return read


def redis_cpu(client: redis.Redis) -> Callable[[], float]:
    def read() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return read


class CpuSampler:
    """Samples named cumulative-CPU probes every ``interval_s`` in a daemon thread."""

    def __init__(self, probes: Mapping[str, Callable[[], float]], interval_s: float = 0.25):
        self._probes = dict(probes)
        self._interval_s = interval_s
        self._samples: dict[str, list[tuple[float, float]]] = {k: [] for k in self._probes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def add(self, name: str, probe: Callable[[], float]) -> None:
        self._samples.setdefault(name, [])
        self._probes[name] = probe

    def remove(self, name: str) -> None:
        """Stop sampling ``name`` (its samples stay)."""
        self._probes.pop(name, None)

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for name, probe in list(self._probes.items()):
                try:
                    value = probe()
                except Exception:  # a probe of a process that just ended
                    continue
                if value == value:  # not NaN
                    self._samples[name].append((now, value))
            self._stop.wait(self._interval_s)

    def share(self, name: str, start: float, end: float) -> float | None:
        """Average CPU use of ``name`` in ``[start, end]`` (wall clock), in % of one core."""
        samples = self._samples.get(name, [])
        if len(samples) < 2 or end <= start:
            return None
        t = np.array([s[0] for s in samples])
        v = np.array([s[1] for s in samples])
        if t[0] > start + 1.0 or t[-1] < end - 1.0:
            return None
        used = np.interp(end, t, v) - np.interp(start, t, v)
        return round(float(used / (end - start) * 100.0), 1)


# -- processes ----------------------------------------------------------------------------
def spawn_module(
    module: str, args: Sequence[str], env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """``python -m module args`` in its own session, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """SIGTERM (graceful), then SIGKILL after ``timeout_s``; return the exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


# -- the world ----------------------------------------------------------------------------
def to_transactions(frame: pd.DataFrame) -> list[Transaction]:
    """Rows of a simulator transactions frame as events (same field names)."""
    times = pd.DatetimeIndex(frame["event_time"]).to_pydatetime().tolist()
    cols = {f: frame[f].tolist() for f in Transaction.__struct_fields__ if f in frame}
    optional = ("country", "device_id")
    out = []
    for i, event_time in enumerate(times):
        values = {f: cols[f][i] for f in cols}
        values["event_time"] = event_time
        for name in optional:
            if not isinstance(values.get(name), str):
                values.pop(name, None)
        values["amount"] = float(values["amount"])
        values["schema_version"] = int(values["schema_version"])
        out.append(Transaction(**values))
    return out


class WorldStream:
    """The handbook world's transactions after the materialised history, in event order."""

    def __init__(self, transactions: pd.DataFrame, start_row: int) -> None:
        self._frame = transactions
        self._next = start_row

    def take(self, n: int) -> list[Transaction]:
        if self._next + n > len(self._frame):
            raise BenchError(f"the simulated world has {len(self._frame) - self._next} rows left")
        rows = self._frame.iloc[self._next : self._next + n]
        self._next += n
        return to_transactions(rows)


def produce_all(bootstrap: str, topic: str, transactions: Sequence[Transaction]) -> float:
    """Send everything as fast as the broker takes it (keyed by card_id); seconds taken."""
    from streams.serde import encode

    producer = Producer(
        producer_config(bootstrap, client_id="bench-backlog", defaults={"linger.ms": 20})
    )
    started = time.perf_counter()
    for tx in transactions:
        value = encode(tx)
        while True:
            try:
                producer.produce(topic, value, key=tx.card_id)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(120):
        raise BenchError(f"backlog not acknowledged by the broker on {topic}")
    return time.perf_counter() - started


# -- the environment ----------------------------------------------------------------------
@dataclass(frozen=True)
class BenchEnv:
    bootstrap: str
    redis_url: str
    redis_prefix: str
    feast_project: str
    feast_repo: Path
    state_dir: Path
    workdir: Path
    run_id: str
    broker_pid: int | None
    champion: str
    world: WorldStream

    def topics(self, phase: str) -> Topics:
        return Topics(prefix=f"bench{self.run_id}.{phase}.")

    @contextmanager
    def phase_topics(
        self, phase: str, scored_config: Mapping[str, str] | None = None
    ) -> Iterator[Topics]:
        """The phase's own topics, created on entry and deleted on exit (with the load
        generator's warm-up topic), so a phase's data - 200,000 backlog records - does
        not keep the embedded broker busier during the phases after it. ``scored_config``:
        extra topic config of the scored (output) topic."""
        topics = self.topics(phase)
        if scored_config:
            ensure_topics(self.bootstrap, topics, only=[SCORED.base], extra_config=scored_config)
        ensure_topics(self.bootstrap, topics)
        try:
            yield topics
        finally:
            names = [name for name, _ in topics.all()]
            delete_topics(self.bootstrap, [*names, warm_up_topic(topics.transactions)])

    def service_env(self, topics: Topics, instance: str) -> dict[str, str]:
        """``FRAUD_*`` settings of a scorer / API / naive process of this run."""
        return {
            "FRAUD_KAFKA_BOOTSTRAP": self.bootstrap,
            "FRAUD_REDIS_URL": self.redis_url,
            "FRAUD_TOPIC_PREFIX": topics.prefix,
            "FRAUD_REDIS_PREFIX": self.redis_prefix,
            "FRAUD_FEAST_PROJECT": self.feast_project,
            "FRAUD_STATE_DIR": str(self.state_dir),
            "FRAUD_INSTANCE_ID": f"bench{self.run_id}-{instance}",
            "FRAUD_GROUP_ID": f"{topics.prefix}{instance}",
            "FRAUD_METRICS_PORT": "0",
            # The world's transactions carry the simulated history's dates (the backlog
            # replays them); the paced phases re-time theirs to now.
            "FRAUD_EVENT_TIME_MAX_AGE_S": "0",
        }


def ensure_champion(registry_dir: Path, log: Callable[[str], None] = print) -> str:
    """The registry's champion if it still loads for this feature set, else a new one."""
    registry = ModelRegistry(registry_dir)
    champion = registry.champion()
    if champion is not None:
        try:
            ServingModel.load(
                champion, expected_features=FEATURE_NAMES, expected_feature_set=FEATURE_SET_ID
            )
            return champion.version
        except ModelError as exc:
            log(f"bench champion {champion.version} unusable ({exc}); training a new one")
    from features.offline import build_training_table
    from models.pipeline import TrainConfig, train_from_table

    log("training the bench champion on the small simulated world (once, then cached)")
    transactions, labels = simulate_history(SimulatorConfig.small(seed=11), days=42)
    table = build_training_table(transactions, labels)
    outcome = train_from_table(
        table,
        FEATURE_NAMES,
        FEATURE_SET_ID,
        config=TrainConfig(train_days=21, delay_days=7, test_days=7, seed=3),
        source="bench: small simulated world, 42 days, seed 11",
        fingerprint="bench-small-world-11",
    )
    version = registry.register(outcome.bundle)
    registry.promote(version.version, reason="benchmark champion")
    return version.version


def _delete_keys(client: redis.Redis, pattern: bytes) -> int:
    keys = list(client.scan_iter(match=pattern, count=2_000))
    for start in range(0, len(keys), 1_000):
        client.delete(*keys[start : start + 1_000])
    return len(keys)


@contextmanager
def bench_environment(
    *,
    redis_url: str,
    state_dir: Path,
    bootstrap: str | None = None,
    world_rows: int = 250_000,
    log: Callable[[str], None] = print,
) -> Iterator[BenchEnv]:
    """Broker, champion, profiles and world of one benchmark run (see the module doc)."""
    from features.profiles.feast_repo import REPO_DIR
    from features.profiles.materialize import materialize_frames

    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-"))
    client = redis.Redis.from_url(redis_url)
    broker: ManagedProcess | None = None
    prefix, project = f"bench{run_id}", f"fraud_bench{run_id}"
    try:
        if bootstrap is None:
            broker = start_broker(
                f"127.0.0.1:{free_port()}", workdir / "kafka", workdir / "broker.log"
            )
            bootstrap = broker.address
        wait_for_broker(bootstrap, 30)
        champion = ensure_champion(state_dir / "registry", log)

        days = HISTORY_DAYS + world_rows // ROWS_PER_DAY_GUESS + 2
        started = time.perf_counter()
        transactions, labels = simulate_history(SimulatorConfig.default(seed=BENCH_SEED), days)
        end = pd.Timestamp(DEFAULT_START, tz="UTC") + timedelta(days=HISTORY_DAYS)
        past = transactions["event_time"] < end
        repo = workdir / "feast_repo"
        shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
        materialize_frames(
            transactions[past],
            labels[labels["event_time"] < end],
            redis_url=redis_url,
            repo_dir=repo,
            end=end.to_pydatetime(),
            project=project,
            seed_writer=False,
        )
        log(
            f"world: {len(transactions):,} simulated transactions, profiles of the first "
            f"{HISTORY_DAYS} days materialised ({time.perf_counter() - started:.1f}s)"
        )
        yield BenchEnv(
            bootstrap=bootstrap,
            redis_url=redis_url,
            redis_prefix=prefix,
            feast_project=project,
            feast_repo=repo,
            state_dir=state_dir,
            workdir=workdir,
            run_id=run_id,
            broker_pid=broker.pid if broker else None,
            champion=champion,
            world=WorldStream(transactions, int(past.sum())),
        )
    finally:
        if broker is not None:
            stop(broker)
        _delete_keys(client, f"{prefix}*".encode())
        _delete_keys(client, b"*" + project.encode())
        shutil.rmtree(workdir, ignore_errors=True)
