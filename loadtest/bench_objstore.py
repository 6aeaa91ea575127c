"""The registry and training store on S3: what a promotion and a poll cost, measured.

Runs against ``endpoint`` (any S3-compatible store; credentials from the AWS environment)
or, without one, against moto's S3 server started here on a free loopback port. moto on
loopback has none of a real store's network time: its numbers are request counts made
visible, not what AWS answers in. Measured:

* register (10 objects and a claim) and promote (verify, conditional PUT, audit record);
* one champion poll when nothing changed (a HEAD) against a full pointer read (a GET);
* promotion latency seen by other processes: from ``promote()`` being called to a
  follower polling every ``poll_s`` seeing the new version (spawned processes);
* with a broker (``bootstrap``): the same latency when the follower is woken by
  ``model.events`` (a long-lived publisher woken after the promotion, as the retrainer's
  is) and polls only every 30 s;
* races: rounds of two promoters from one champion; a round with two winners is counted;
* the training store: one append of ``rows`` rows, a full read of what was written.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.training_store import TrainingRow, TrainingStore
from models.errors import PromotionConflict
from models.policy import ThresholdPolicy
from models.registry import ModelBundle
from models.registry_open import Registry, open_registry
from models.scoring import FeatureSpec
from services.stack.process import free_port, port_open
from streams.object_store import ObjectStore


def _bundle(tag: str) -> ModelBundle:
    return ModelBundle(
        onnx=os.urandom(200_000),
        model_text=f"tree-{tag}" * 1000,
        spec=FeatureSpec(("a", "b"), "fs-1"),
        metrics={"average_precision": 0.5},
        policy=ThresholdPolicy(0.2, 0.9, 0.005),
        reference=np.zeros((500, 2), dtype=np.float32),
        fingerprint=f"fp-{tag}",
    )


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "n": len(ordered),
    }


def _follow(url: str, endpoint: str, cache: str, poll_s: float, want: str, out: Any) -> None:
    registry = open_registry(url, endpoint_url=endpoint, cache_dir=Path(cache))
    registry.champion()
    out.put(("ready", 0.0))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        champion = registry.champion()
        if champion is not None and champion.version == want:
            out.put(("seen", time.time()))
            return
        time.sleep(poll_s)
    out.put(("timeout", time.time()))


def _hear(
    url: str, endpoint: str, cache: str, bootstrap: str, topic: str, want: str, out: Any
) -> None:
    from services.scorer.model_events import ModelEventsListener

    registry = open_registry(url, endpoint_url=endpoint, cache_dir=Path(cache))
    registry.champion()
    woken = threading.Event()
    listener = ModelEventsListener(bootstrap, topic, woken.set, member="bench-follower")
    listener.start()
    time.sleep(3.0)  # the listener starts at the latest offset: let it take its partitions
    out.put(("ready", 0.0))
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            woken.wait(30.0)  # the fallback poll, long: only the event should wake it
            woken.clear()
            champion = registry.champion()
            if champion is not None and champion.version == want:
                out.put(("seen", time.time()))
                return
        out.put(("timeout", time.time()))
    finally:
        listener.stop()


def _promotion_heard(
    registry: Registry, url: str, endpoint: str, work: Path, bootstrap: str, rounds: int
) -> list[float]:
    from services.retrainer.events import EventPublisher, announce_registry, kafka_sender
    from services.settings import CommonSettings
    from streams.kafka import ensure_topics

    settings = CommonSettings(kafka_bootstrap=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:8]}.")
    ensure_topics(bootstrap, settings.topics())
    announce_registry(settings, registry, client_id="bench")  # what earlier rounds left
    # a long-lived publisher, connected once, like the retrainer's
    publisher = EventPublisher(
        settings.topics().model_events,
        [registry.announcements()],
        connect=kafka_sender(settings.kafka(), settings.topics(), "bench"),
    ).start()
    spawn = multiprocessing.get_context("spawn")
    heard: list[float] = []
    for _ in range(rounds):
        version = registry.register(_bundle(uuid.uuid4().hex)).version
        out = spawn.Queue()
        cache = str(work / f"hearer-{uuid.uuid4().hex[:6]}")
        topic = settings.topics().model_events
        args = (url, endpoint, cache, bootstrap, topic, version, out)
        follower = spawn.Process(target=_hear, args=args)
        follower.start()
        out.get(timeout=120)
        started = time.time()
        registry.promote(version, "bench")
        publisher.wake()  # as the retrainer does after a verdict
        state, at = out.get(timeout=120)
        follower.join(30)
        if state == "seen":
            heard.append(at - started)
    publisher.close(timeout_s=5.0)
    return heard


def _promotion_seen(
    registry: Registry, url: str, endpoint: str, work: Path, poll_s: float, rounds: int
) -> list[float]:
    spawn = multiprocessing.get_context("spawn")
    seen: list[float] = []
    for _ in range(rounds):
        version = registry.register(_bundle(uuid.uuid4().hex)).version
        out = spawn.Queue()
        cache = str(work / f"follower-{uuid.uuid4().hex[:6]}")
        follower = spawn.Process(target=_follow, args=(url, endpoint, cache, poll_s, version, out))
        follower.start()
        out.get(timeout=120)
        time.sleep(random.uniform(0, poll_s))  # a promotion falls anywhere in a poll interval
        started = time.time()
        registry.promote(version, "bench")
        state, at = out.get(timeout=120)
        follower.join(30)
        if state == "seen":
            seen.append(at - started)
    return seen


def _race(
    url: str,
    endpoint: str,
    cache: Path,
    version: str,
    replaces: str | None,
    barrier: Any,
    wins: list[str],
) -> None:
    racer = open_registry(url, endpoint_url=endpoint, cache_dir=cache)
    barrier.wait()
    try:
        racer.promote(version, "race", replaces=replaces)
        wins.append(version)
    except PromotionConflict:
        pass


def _races(url: str, endpoint: str, work: Path, rounds: int) -> dict[str, int]:
    registry = open_registry(url, endpoint_url=endpoint, cache_dir=work / "race")
    double = single = 0
    for _ in range(rounds):
        base = registry.champion()
        mine = [registry.register(_bundle(uuid.uuid4().hex)).version for _ in range(2)]
        barrier = threading.Barrier(2)
        wins: list[str] = []
        replaces = base.version if base else None
        threads = [
            threading.Thread(
                target=_race, args=(url, endpoint, work / f"r{i}", v, replaces, barrier, wins)
            )
            for i, v in enumerate(mine)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        single += len(wins) == 1
        double += len(wins) > 1
    return {"rounds": rounds, "one_winner": single, "two_winners": double}


def _rows(n: int, tag: str) -> list[TrainingRow]:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    return [
        TrainingRow(
            transaction_id=f"{tag}-{i}",
            event_time=t0 + timedelta(minutes=i),
            card_id=f"C{i % 97}",
            terminal_id="T1",
            amount=10.0,
            is_fraud=i % 7 == 0,
            label_source="analyst",
            analyst="bench",
            labelled_at=t0 + timedelta(days=1),
            model_version="v0001",
            score=0.5,
            decision="review",
            feature_set=FEATURE_SET_ID,
            features=[float(j) for j in range(len(FEATURE_NAMES))],
        )
        for i in range(n)
    ]


def run_objstore_bench(
    work: Path,
    *,
    endpoint: str | None = None,
    bootstrap: str | None = None,
    poll_s: float = 1.0,
    rounds: int = 5,
    rows: int = 500,
) -> dict[str, Any]:
    server = None
    if endpoint is None:
        for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        ObjectStore(f"s3://{bucket}", endpoint_url=endpoint).fs.call_s3(
            "create_bucket", Bucket=bucket
        )
        url = f"s3://{bucket}/registry"
        registry = open_registry(url, endpoint_url=endpoint, cache_dir=work / "leader")
        register_s, promote_s = [], []
        for i in range(rounds):
            started = time.perf_counter()
            version = registry.register(_bundle(f"r{i}")).version
            register_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            registry.promote(version, "bench")
            promote_s.append(time.perf_counter() - started)
        poller = open_registry(url, endpoint_url=endpoint, cache_dir=work / "poller")
        poller.champion()
        head_s, get_s = [], []
        store = ObjectStore(url, endpoint_url=endpoint)
        for _ in range(50):
            started = time.perf_counter()
            poller.champion()
            head_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.read("champion.json")
            get_s.append(time.perf_counter() - started)
        seen = _promotion_seen(registry, url, endpoint, work, poll_s, rounds)
        heard = (
            _promotion_heard(registry, url, endpoint, work, bootstrap, rounds) if bootstrap else []
        )
        races = _races(url, endpoint, work, rounds * 2)
        training = TrainingStore(f"s3://{bucket}/training", endpoint_url=endpoint)
        append_s = []
        for i in range(rounds):
            started = time.perf_counter()
            training.append(_rows(rows, f"a{i}"))
            append_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        read_rows = len(TrainingStore(f"s3://{bucket}/training", endpoint_url=endpoint).read())
        read_s = time.perf_counter() - started
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    return {
        "at": datetime.now(UTC).isoformat(),
        "host_cores": os.cpu_count(),
        "store": "moto server (loopback)" if server is not None else endpoint,
        "register": _ms(register_s),
        "promote": _ms(promote_s),
        "champion_poll_unchanged_head": _ms(head_s),
        "pointer_get": _ms(get_s),
        "poll_s": poll_s,
        "promotion_seen_by_other_process": _ms(seen) if seen else {"n": 0},
        "promotion_heard_via_model_events": _ms(heard) if heard else {"n": 0},
        "promotion_races": races,
        "training_append": {**_ms(append_s), "rows": rows},
        "training_read": {"rows": read_rows, "ms": round(read_s * 1000, 1), "parts": rounds},
    }
