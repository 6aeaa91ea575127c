"""Fault case 7: the broker stops while the retrainer trains and promotes a challenger.

``fraudctl serve retrainer`` runs against a broker of the case's own. Once a challenger
is training (drift in the served traffic triggered it), the broker is stopped; the
promotion then happens with no broker. The retrainer must stay up, the promotion must be
made (the champion pointer) and say so in the log, the events must wait in the outbox
while the broker is away (metric + log line), and once the broker is back on the same
data folder the same process must announce them: exactly one ``promoted`` event, whose
event_id is the one the registry recorded.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest

from features.training_store import TrainingStore
from models.registry import ModelRegistry
from services.stack.process import free_port
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.faults.learning_loop import OwnBroker, model_events, own_broker, scrape, wait_until
from tests.processes import ServiceProcess
from tests.retrainer_world import build_world, serve

pytestmark = pytest.mark.faults


def test_a_broker_outage_during_a_promotion_delays_its_announcement_only(
    tmp_path: Path,
) -> None:
    with own_broker(tmp_path) as broker:
        _case(tmp_path, broker)


def _case(tmp_path: Path, broker: OwnBroker) -> None:
    world = build_world(tmp_path / "world")
    topics = Topics(prefix=f"f{uuid.uuid4().hex[:10]}.")
    ensure_topics(broker.address, topics)
    state = tmp_path / "state"
    shutil.copytree(world.registry_dir, state / "registry")
    serve(world, topics, broker.address, TrainingStore(state / "training"))
    port = free_port()
    env = {
        "FRAUD_KAFKA_BOOTSTRAP": broker.address,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_STATE_DIR": str(state),
        "FRAUD_GROUP_ID": f"{topics.prefix}retrainer",
        "FRAUD_HISTORY_DIR": str(world.history_dir),
        "FRAUD_HISTORY_DAYS": "7",
        "FRAUD_LABEL_MATURITY_S": "0",
        "FRAUD_WINDOW_ROWS": "3000",
        "FRAUD_MIN_WINDOW_ROWS": "1000",
        "FRAUD_CHECK_EVERY_S": "3600",
        "FRAUD_CHECK_EVERY_ROWS": str(len(world.served)),  # one check, all rows in
        "FRAUD_MIN_NEW_LABELS": str(10**9),
        "FRAUD_TRAIN_DAYS": "28",
        "FRAUD_TEST_DAYS": "4",
        "FRAUD_VAL_DAYS": "3",
        "FRAUD_REFERENCE_ROWS": "1000",
    }
    retrainer = ServiceProcess(
        ["serve", "retrainer", "--metrics-port", str(port)], env, tmp_path / "retrainer.log"
    )
    try:
        log = retrainer.output
        wait_until(lambda: "stage=train starting" in log(), 120, "a challenger training", log)
        broker.stop()
        assert "stage=promote" not in log(), "the promotion came before the broker was down"

        wait_until(lambda: "stage=promote" in log(), 120, "the promotion", log)
        promoted_at = time.monotonic()
        assert retrainer.alive(), log()[-3000:]
        assert "stage=promote made: v0001 -> v0002" in log()
        registry = ModelRegistry(state / "registry")
        assert registry.champion().version == "v0002"  # type: ignore[union-attr]
        # visible while it lasts: events waiting (registered + promoted), a warning
        wait_until(
            lambda: (scrape(port, "fraud_retrainer_outbox_events") or 0) >= 2,
            30,
            "fraud_retrainer_outbox_events >= 2",
            log,
        )
        wait_until(lambda: "stage=event broker unavailable" in log(), 30, "the outage log", log)
        assert (scrape(port, "fraud_retrainer_outbox_oldest_seconds") or 0) > 0
        time.sleep(max(0.0, 10 - (time.monotonic() - promoted_at)))  # 10 s+ after it
        assert retrainer.alive(), log()[-3000:]

        broker.start()
        recovery_s = wait_until(
            lambda: "stage=event announced promoted v0002" in log(),
            90,
            "the announcement after the outage",
            log,
        )
        wait_until(
            lambda: scrape(port, "fraud_retrainer_outbox_events") == 0, 30, "an empty outbox", log
        )
        assert retrainer.alive()
    finally:
        code = retrainer.terminate(30)
    assert code == 0, retrainer.output()[-3000:]

    events = model_events(broker.address, topics.model_events)
    promoted = {e.event_id: e for e in events if e.kind == "promoted"}
    assert [(e.model_version, e.previous_version) for e in promoted.values()] == [
        ("v0002", "v0001")
    ]
    registered = {e.event_id for e in events if e.kind == "registered"}
    assert len(registered) == 1
    pointer = json.loads((state / "registry" / "champion.json").read_text())
    assert list(promoted) == [pointer["event"]["event_id"]]
    audit = {line["event_id"] for line in registry.audit()}
    assert set(promoted) | registered <= audit
    duplicates = sum(e.kind in ("promoted", "registered") for e in events) - 2
    outage = broker.outages[-1]
    print(
        f"\nfault 7 | broker down {outage[1] - outage[0]:.1f}s during a promotion | "  # type: ignore[operator]
        f"events 2 | announced 2 | duplicates {duplicates} | lost 0 | "
        f"recovery {recovery_s:.1f}s after the broker came back"
    )
