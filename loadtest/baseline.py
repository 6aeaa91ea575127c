"""The naive baseline: the scorer as a first attempt would write it, for the benchmark.

One message at a time, no batching anywhere::

    poll one message -> decode -> real-time features for this one transaction (one EVALSHA)
        -> profile features via the Feast SDK ``get_online_features`` (one call per transaction)
        -> LightGBM ``Booster.predict`` on one row -> policy -> reasons if flagged
        -> produce the Decision (+ ReviewCase) and ``flush()`` before the next message
    offsets: librdkafka auto-commit (what a first attempt leaves on)

``Booster.predict`` runs with one thread: with LightGBM's default (every core, OpenMP) a
single-row predict on a busy 2-core box spends milliseconds in thread hand-offs, and the
baseline should be naive, not sabotaged.

Same inputs, same decisions: the features come from the same definitions and Redis state
(:class:`features.realtime.RedisFeatureStore`, batches of one), the profiles from the same
Feast online store (through the SDK instead of the direct reader), the score from the same
registered model (the LightGBM booster the ONNX file was exported from, equal within the
export's parity tolerance) and the same threshold policy. An integration test checks that
both make the same decisions on the same transactions.

Run as a process (the benchmark does): ``python -m loadtest.baseline --feast-repo DIR
--out stats.json`` with the scorer's ``FRAUD_*`` settings in the environment.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, Producer

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.interface import FeatureStore
from features.profiles.feast_repo import (
    REPO_DIR,
    feast_connection_string,
    open_store,
    sdk_read_raw,
)
from features.profiles.names import TERMINAL_RISK_VIEW
from features.profiles.reader import finalize_profiles
from features.profiles.times import to_utc_us
from features.realtime.redis_store import RedisFeatureStore
from loadtest.procstats import peak_rss_mb, process_cpu_s
from models.errors import ModelError
from models.registry import ModelVersion
from models.registry_open import Registry
from models.serving import ServingModel
from services.scorer.settings import ScorerSettings
from streams.dlq import dead_letter_for, encode_dead_letter
from streams.events import Decision, ReviewCase, Transaction
from streams.kafka import consumer_config, producer_config
from streams.serde import Rejection, encode, transaction_decoder
from streams.topics import Topics


class SdkProfileReader:
    """Profile features through Feast's ``get_online_features`` (the SDK path).

    Same semantics as :class:`features.profiles.reader.FeastRedisProfileReader` (the
    scorer's direct reader): raw values from the online store, then the shared
    :func:`finalize_profiles` (TTL, defaults, ageing). ``as_of`` is taken exactly as the
    direct reader takes it, so both readers serve the same matrix for the same call.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.ttl = store.get_feature_view(TERMINAL_RISK_VIEW).ttl
        self.calls = 0

    def read_batch(self, terminal_ids: Sequence[str], as_of: Any) -> np.ndarray:
        self.calls += 1
        if isinstance(as_of, np.ndarray) and as_of.dtype == np.int64:
            as_of_us = as_of
        else:
            as_of_us = to_utc_us(as_of)
        values, seconds = sdk_read_raw(self.store, terminal_ids)
        return finalize_profiles(values, seconds, np.asarray(as_of_us), self.ttl)


@dataclass
class NaiveStats:
    """What one naive run did; times are wall clock (``time.time()``) and process CPU."""

    decided: int = 0
    flagged: int = 0
    dead_letters: int = 0
    first_wall: float | None = None
    last_wall: float | None = None
    first_cpu: float = 0.0
    last_cpu: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds

    def summary(self) -> dict[str, Any]:
        wall = (self.last_wall or 0.0) - (self.first_wall or 0.0)
        n = max(self.decided, 1)
        return {
            **asdict(self),
            "wall_s": wall,
            "tx_per_s": self.decided / wall if wall > 0 else 0.0,
            "cpu_us_per_tx": (self.last_cpu - self.first_cpu) * 1e6 / n,
            "stage_us_per_tx": {k: v * 1e6 / n for k, v in self.stage_s.items()},
            "max_rss_mb": peak_rss_mb(),
        }


class NaiveDecider:
    """Decides one transaction: features (batch of one), ``Booster.predict``, policy, reasons."""

    def __init__(self, features: FeatureStore, served: ServingModel) -> None:
        self.features = features
        self.booster = served.explainer.booster
        self.policy = served.policy
        self.explainer = served.explainer
        self.version = served.version
        self.stats = NaiveStats()

    def decide(
        self, tx: Transaction, produced_at_ms: int | None = None
    ) -> tuple[Decision, ReviewCase | None]:
        """The decision of one transaction (and its review case when flagged)."""
        t0 = time.perf_counter()
        row = self.features.update_and_read_batch([tx]).values  # profiles: one SDK call
        t1 = time.perf_counter()
        score = float(np.clip(self.booster.predict(row, num_threads=1)[0], 0.0, 1.0))
        t2 = time.perf_counter()
        outcome = str(self.policy.decide(np.array([score]))[0])
        t3 = time.perf_counter()
        reasons = self.explainer.explain(row)[0] if outcome != "approve" else []
        t4 = time.perf_counter()
        now = datetime.now(UTC)
        latency = None
        if produced_at_ms is not None and produced_at_ms > 0:
            latency = round(now.timestamp() * 1e3 - produced_at_ms, 3)
        timings = {
            "features": round((t1 - t0) * 1e3, 4),
            "inference": round((t2 - t1) * 1e3, 4),
            "policy": round((t3 - t2) * 1e3, 4),
            "explain": round((t4 - t3) * 1e3, 4),
        }
        decision = Decision(
            transaction_id=tx.transaction_id,
            card_id=tx.card_id,
            terminal_id=tx.terminal_id,
            event_time=tx.event_time,
            amount=tx.amount,
            score=score,
            decision=outcome,  # type: ignore[arg-type]
            model_version=self.version,
            feature_set=FEATURE_SET_ID,
            features=row[0].astype(np.float64).tolist(),
            reasons=reasons,
            timings_ms=timings,
            latency_ms=latency,
            decided_at=now,
        )
        for stage, ms in timings.items():
            self.stats.add(stage, ms / 1e3)
        if outcome == "approve":
            return decision, None
        case = ReviewCase(
            case_id=tx.transaction_id,
            transaction=tx,
            score=score,
            decision=decision.decision,
            model_version=self.version,
            reasons=reasons,
            created_at=now,
        )
        return decision, case


_AUTO_COMMIT: dict[str, Any] = {"enable.auto.commit": True, "enable.auto.offset.store": True}


class NaiveScorer:
    """The one-message-at-a-time Kafka loop around a :class:`NaiveDecider`."""

    def __init__(
        self,
        decider: NaiveDecider,
        *,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        client_id: str = "naive-baseline",
    ) -> None:
        self.decider = decider
        self.topics = topics
        self.consumer = Consumer(
            consumer_config(
                bootstrap,
                group_id=group_id,
                client_id=client_id,
                **_AUTO_COMMIT,
            )
        )
        self.producer = Producer(producer_config(bootstrap, client_id=client_id))
        self.stats = decider.stats

    def run(self, *, max_idle_s: float = 5.0, limit: int | None = None) -> NaiveStats:
        """Consume until ``max_idle_s`` without input (or ``limit`` decisions)."""
        self.consumer.subscribe([self.topics.transactions])
        idle_since = time.monotonic()
        stats = self.stats
        try:
            while limit is None or stats.decided < limit:
                message = self.consumer.poll(0.1)
                if message is None or message.error() is not None:
                    if time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                idle_since = time.monotonic()
                if stats.first_wall is None:
                    stats.first_wall, stats.first_cpu = time.time(), process_cpu_s()
                t0 = time.perf_counter()
                result = transaction_decoder.decode(message.value())
                stats.add("decode", time.perf_counter() - t0)
                if isinstance(result, Rejection):
                    value, key = encode_dead_letter(dead_letter_for(message, result))
                    self.producer.produce(self.topics.dlq, value, key)
                    self.producer.flush()
                    stats.dead_letters += 1
                    continue
                ts_type, ts = message.timestamp()
                decision, case = self.decider.decide(
                    result, ts if ts_type != TIMESTAMP_NOT_AVAILABLE else -1
                )
                t1 = time.perf_counter()
                self.producer.produce(self.topics.scored, encode(decision), decision.card_id)
                if case is not None:
                    self.producer.produce(self.topics.review, encode(case), result.card_id)
                    stats.flagged += 1
                self.producer.flush()  # synchronous: wait for this decision's ack
                stats.add("produce", time.perf_counter() - t1)
                stats.decided += 1
                stats.last_wall, stats.last_cpu = time.time(), process_cpu_s()
        finally:
            self.consumer.close()
        return stats


def load_champion(registry: Registry) -> ModelVersion:
    champion = registry.champion()
    if champion is None:
        raise ModelError(f"no champion model in {registry.root}")
    return champion


def build_naive_scorer(settings: ScorerSettings, feast_repo: Path = REPO_DIR) -> NaiveScorer:
    """The naive scorer over the same Redis, Feast project and champion as ``settings``."""
    redis_url = settings.redis_url.get_secret_value()
    store = open_store(
        feast_repo,
        project=settings.feast_project,
        connection_string=feast_connection_string(redis_url),
    )
    features = RedisFeatureStore(
        redis.Redis.from_url(redis_url),
        prefix=settings.redis_prefix,
        profiles=SdkProfileReader(store),
    )
    served = ServingModel.load(
        load_champion(settings.registry()),
        expected_features=FEATURE_NAMES,
        expected_feature_set=FEATURE_SET_ID,
    )
    return NaiveScorer(
        NaiveDecider(features, served),
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics(),
        group_id=settings.group_id,
        client_id=settings.member_id(),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feast-repo", type=Path, default=REPO_DIR)
    parser.add_argument("--max-idle-s", type=float, default=5.0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True, help="JSON stats file")
    args = parser.parse_args(argv)
    scorer = build_naive_scorer(ScorerSettings(metrics_port=0), args.feast_repo)
    stats = scorer.run(max_idle_s=args.max_idle_s, limit=args.limit)
    args.out.write_text(json.dumps(stats.summary(), indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover - the benchmark runs it as a process
    main()
