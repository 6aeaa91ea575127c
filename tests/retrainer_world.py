"""A drifting world for retrainer tests: a champion trained on 21 simulated days, then 14
days of served traffic with card testing it never saw, scored by it and labelled as the
feedback processor would (analysts' verdicts on flagged rows, chargebacks for missed fraud).

Served traffic is featurised by the offline builder (the scorer serves the same values - the
parity contract) and produced as ``Decision``s to ``transactions.scored``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.offline import build_training_table
from features.training_store import TrainingRow, TrainingStore
from models.pipeline import TrainConfig, train_from_table
from models.registry import ModelRegistry
from services.retrainer.promotion import champion_scores
from streams.events import Decision
from streams.kafka import producer_config
from streams.producer import AckedProducer
from streams.serde import encode
from streams.simulator import SimulatorConfig, simulate_history, write_history
from streams.topics import Topics

HISTORY_DAYS = 21
SERVED_DAYS = 14
START = date(2026, 1, 1)


@dataclass(frozen=True)
class World:
    history_dir: Path
    registry_dir: Path  # a registry holding the champion v0001, copied per test
    served: pd.DataFrame  # served rows: keys, is_fraud, scenario, score, features
    review_threshold: float


def build_world(root: Path) -> World:
    """Simulate, train and register the champion v0001 under ``root`` (~3 s)."""
    config = SimulatorConfig.small(
        seed=3, card_testing_per_day=8.0, new_pattern_from_day=HISTORY_DAYS
    )
    transactions, labels = simulate_history(config, HISTORY_DAYS + SERVED_DAYS, START)
    table = build_training_table(transactions, labels)
    day = (pd.to_datetime(table["event_time"], utc=True) - pd.Timestamp(START, tz="UTC")).dt.days
    history = table[(day < HISTORY_DAYS).to_numpy()]
    outcome = train_from_table(
        history,
        list(FEATURE_NAMES),
        FEATURE_SET_ID,
        config=TrainConfig(
            train_days=14, delay_days=0, test_days=3, val_days=3, reference_rows=1000
        ),
        source="test history",
        fingerprint="test",
    )
    registry = ModelRegistry(root / "registry")
    champion = registry.register(outcome.bundle)
    registry.promote(champion.version, "test champion")
    announced = registry.announcements()  # the champion's events went out long ago
    announced.delivered(announced.pending()[-1].end)
    write_history(root / "history", config, HISTORY_DAYS, START)
    served = table[(day >= HISTORY_DAYS).to_numpy()].reset_index(drop=True)
    served["scenario"] = served["transaction_id"].map(
        labels.set_index("transaction_id")["scenario"]
    )
    served["score"] = champion_scores(champion, served[list(FEATURE_NAMES)].to_numpy(np.float32))
    return World(
        root / "history", root / "registry", served, outcome.bundle.policy.review_threshold
    )


def serve(world: World, topics: Topics, bootstrap: str, store: TrainingStore) -> None:
    """Produce the served decisions, and label them as analysts + chargebacks would."""
    producer = AckedProducer(producer_config(bootstrap, client_id="test-scorer"))
    served = world.served
    now = datetime.now(UTC)
    rows: list[TrainingRow] = []
    features = served[list(FEATURE_NAMES)].to_numpy(np.float64)
    for i, r in enumerate(served.itertuples(index=False)):
        flagged = r.score >= world.review_threshold
        decision = Decision(
            transaction_id=r.transaction_id,
            card_id=r.card_id,
            terminal_id=r.terminal_id,
            event_time=r.event_time.to_pydatetime(),
            amount=float(r.amount),
            score=float(r.score),
            decision="review" if flagged else "approve",
            model_version="v0001",
            feature_set=FEATURE_SET_ID,
            features=features[i].tolist(),
        )
        producer.produce(topics.scored, encode(decision), key=r.card_id)
        if flagged or r.is_fraud:
            rows.append(
                TrainingRow(
                    transaction_id=r.transaction_id,
                    event_time=decision.event_time,
                    card_id=r.card_id,
                    terminal_id=r.terminal_id,
                    amount=float(r.amount),
                    is_fraud=bool(r.is_fraud),
                    label_source="analyst" if flagged else "chargeback",
                    analyst="test",
                    labelled_at=now,
                    model_version="v0001",
                    score=float(r.score),
                    decision=decision.decision,
                    feature_set=FEATURE_SET_ID,
                    features=features[i].tolist(),
                )
            )
    producer.wait_acked(60)
    store.append(rows)
