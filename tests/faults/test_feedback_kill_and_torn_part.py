"""Fault case 6: the feedback processor is SIGKILLed mid-join and a training part is torn.

Labels stream in (200/s) for decisions already served; some fraud labels are dated 45 s
ahead, so their terminal-risk update has to wait. While the processor joins, it is
SIGKILLed; then its oldest training part is cut in half (what a power loss does to a part
that was never fsynced). The restarted processor must quarantine the torn part (log line
and metric), land its labels again from the decisions it holds, apply the waiting risk
updates once they are usable (they survived the kill in the ``deferred`` table) and end
with every label exactly once: one training row and one audit line per label, every fraud
label once in terminal risk.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis

from features.training_store import TrainingStore
from services.stack.process import free_port
from streams.events import Label
from streams.kafka import producer_config
from streams.producer import AckedProducer
from streams.serde import encode
from streams.topics import Topics
from tests.faults.learning_loop import scrape, wait_until
from tests.integration.test_feedback_processor import (
    _check_terminal_risk,
    _committed,
    decision,
    label,
    start_processor,
)

pytestmark = pytest.mark.faults

N = 1600
WAITING = [i for i in range(0, 32, 4)]  # fraud labels dated ahead: their risk update waits
REPLAY = 30  # records per partition replayed on restart: the torn part is older than that


def _guarded(client: redis.Redis, prefix: str, i: int) -> bool:
    """Is fraud label ``i`` applied to terminal risk (its idempotence guard set)?"""
    terminal = decision(i).terminal_id
    return bool(client.hexists(f"{prefix}:trisk:{{{terminal}}}:fr", f"t:tx{i:05d}"))


def test_a_killed_processor_and_a_torn_part_lose_and_double_no_label(
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_FEAST_PROJECT": f"p{redis_prefix}",
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
        "FRAUD_TICK_S": "1",
        "FRAUD_PROGRESS_LOG_S": "2",
        "FRAUD_RESTART_REPLAY": str(REPLAY),
        "FRAUD_METRICS_PORT": str(port),
    }
    store = TrainingStore(tmp_path / "state" / "training")
    client = redis.Redis.from_url(redis_url)
    producer = AckedProducer(producer_config(kafka_bootstrap, client_id="fault-feedback"))
    for i in range(N):
        producer.produce(topics.scored, encode(decision(i)), decision(i).card_id)
    producer.wait_acked()
    now = datetime.now(UTC)
    usable_at = now + timedelta(seconds=45)
    labels: list[Label] = [
        label(i, "fraud" if i % 4 == 0 else "legit", usable_at if i in WAITING else now)
        for i in range(N)
    ]
    sending = threading.Thread(target=_stream, args=(producer, topics, labels), daemon=True)

    first = start_processor(env, tmp_path / "first.log")
    try:
        wait_until(lambda: "stage=start" in first.output(), 60, "the start", first.output)
        sending.start()
        group = f"{topics.prefix}feedback"
        wait_until(
            lambda: (
                len(store.read()) >= 600
                and _committed(kafka_bootstrap, group, topics.labels) >= 600
            ),
            90,
            "600 labels joined and committed",
            first.output,
        )
        first.kill()  # mid-join: labels keep arriving
    finally:
        if first.alive():
            first.kill()
    joined_at_kill = len(store.read())
    assert joined_at_kill < N, "the kill came after the whole stream: not mid-join"
    assert datetime.now(UTC) < usable_at, "the waiting labels were usable before the kill"
    assert not any(_guarded(client, redis_prefix, i) for i in WAITING)
    torn = sorted(store.rows_dir.rglob("part-*.parquet"))[0]
    torn_ids = set(pq.read_table(torn, columns=["transaction_id"])["transaction_id"].to_pylist())
    torn.chmod(0o644)
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    sending.join(60)

    second = start_processor(env, tmp_path / "second.log")
    restarted = time.monotonic()
    try:
        # the processor is the first reader to meet the torn part (this test reads later)
        log = second.output
        wait_until(lambda: "stage=quarantine" in log(), 60, "the quarantine", log)
        wait_until(
            lambda: (
                len(TrainingStore(store.root).read()) == N
                and scrape(port, "fraud_feedback_missing_rows") == 0
            ),
            120,
            f"all {N} labels landed",
            second.output,
        )
        recovery_s = time.monotonic() - restarted
        wait_until(
            lambda: all(_guarded(client, redis_prefix, i) for i in WAITING),
            90,
            "the waiting risk updates applied",
            second.output,
        )
        applied_after_usable_s = (datetime.now(UTC) - usable_at).total_seconds()
        waited_s = time.monotonic() - restarted
        quarantined = scrape(port, "fraud_training_parts_quarantined_total")
    finally:
        assert second.terminate(30.0) == 0, second.output()[-3000:]
    text = second.output()

    assert "stage=quarantine" in text and torn.name in text
    assert [p.name for p in store.quarantine.parts()] == [torn.name]
    assert quarantined == 1.0
    assert "lost their training rows" in text and "lost training rows again" in text
    final = TrainingStore(store.root)
    frame = final.read()
    assert list(frame["transaction_id"]) == [f"tx{i:05d}" for i in range(N)]
    assert list(frame["is_fraud"]) == [int(i % 4 == 0) for i in range(N)]
    assert set(frame.loc[frame["transaction_id"].isin(torn_ids), "transaction_id"]) == torn_ids
    # every label exactly once: one physical row and one audit line each
    physical = sum(pq.read_metadata(p).num_rows for p in final.rows_dir.rglob("*.parquet"))
    trail = final.audit()
    assert physical == N and len(trail) == N
    assert trail["transaction_id"].is_unique
    _check_terminal_risk(redis_url, redis_prefix, f"p{redis_prefix}", frame)
    print(
        f"\nfault 6 | SIGKILL mid-join ({joined_at_kill}/{N} joined) + torn part "
        f"({len(torn_ids)} rows) | labels {N} | landed {len(frame)} | duplicates "
        f"{physical - N} | lost {N - len(frame)} | recovery {recovery_s:.1f}s after the "
        f"restart ({waited_s:.0f}s to the waiting risk updates, applied "
        f"{applied_after_usable_s:+.1f}s from their usable time; the writer's as-of time is "
        "rounded up to a whole second)"
    )


def _stream(producer: AckedProducer, topics: Topics, labels: list[Label]) -> None:
    """200 labels/s, the waiting ones first."""
    for start in range(0, len(labels), 100):
        for item in labels[start : start + 100]:
            producer.produce(topics.labels, encode(item), item.transaction_id)
        producer.wait_acked()
        time.sleep(0.5)
