"""Every topic of the system, defined once: base name, partitions, key and retention.

Services never spell a topic name: they ask a :class:`Topics` built from settings, which
adds the deployment's prefix (tests use a uuid prefix so they never see each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    base: str
    partitions: int
    key: str
    retention_ms: int
    description: str
    max_message_bytes: int = 1024 * 1024


TRANSACTIONS = TopicSpec(
    "transactions",
    6,
    "card_id",
    7 * DAY_MS,
    "card transactions from producers; keyed by card_id so a card's events stay ordered",
    # Oversized payloads are let in so the scorer can dead-letter them (reason too_large)
    # instead of producers losing them to a broker-side MSG_SIZE_TOO_LARGE.
    max_message_bytes=8 * 1024 * 1024,
)
SCORED = TopicSpec(
    "transactions.scored",
    6,
    "card_id",
    30 * DAY_MS,
    "one Decision per transaction: the audit log of predictions",
)
REVIEW = TopicSpec("fraud.review", 3, "card_id", 30 * DAY_MS, "flagged cases for analysts")
LABELS = TopicSpec(
    "fraud.labels", 3, "transaction_id", 365 * DAY_MS, "analyst and chargeback labels"
)
MODEL_EVENTS = TopicSpec(
    "model.events",
    1,
    "model_version",
    365 * DAY_MS,
    "promotions, rollbacks, rejections and drift reports",
)
DLQ = TopicSpec(
    "transactions.dlq",
    1,
    "source key",
    30 * DAY_MS,
    "records that could not be processed, with reason and original bytes",
    max_message_bytes=16 * 1024 * 1024,  # holds an 8 MiB original, base64-encoded
)

ALL_TOPICS: tuple[TopicSpec, ...] = (TRANSACTIONS, SCORED, REVIEW, LABELS, MODEL_EVENTS, DLQ)


@dataclass(frozen=True)
class Topics:
    """Concrete topic names for one deployment (prefix + base name)."""

    prefix: str = ""
    partitions: dict[str, int] = field(default_factory=dict)

    def name(self, spec: TopicSpec) -> str:
        return f"{self.prefix}{spec.base}"

    def partition_count(self, spec: TopicSpec) -> int:
        return self.partitions.get(spec.base, spec.partitions)

    @property
    def transactions(self) -> str:
        return self.name(TRANSACTIONS)

    @property
    def scored(self) -> str:
        return self.name(SCORED)

    @property
    def review(self) -> str:
        return self.name(REVIEW)

    @property
    def labels(self) -> str:
        return self.name(LABELS)

    @property
    def model_events(self) -> str:
        return self.name(MODEL_EVENTS)

    @property
    def dlq(self) -> str:
        return self.name(DLQ)

    def all(self) -> list[tuple[str, TopicSpec]]:
        return [(self.name(spec), spec) for spec in ALL_TOPICS]
