"""Every topic of the system, defined once: base name, partitions, key and retention.

Services never spell a topic name: they ask a :class:`Topics` built from settings, which
adds the deployment's prefix (tests use a uuid prefix so they never see each other) and
the deployment's layout: partitions, replication factor and ``min.insync.replicas`` per
topic (the specs' partition counts are the embedded default).

A decision is written to the partition number of its transaction, so a scorer finds the
decisions of its partitions in the same partitions of ``transactions.scored``: that topic
has at least as many partitions as ``transactions`` (by default exactly as many).
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


BY_BASE: dict[str, TopicSpec] = {spec.base: spec for spec in ALL_TOPICS}


@dataclass(frozen=True)
class Topics:
    """Concrete topic names and layout for one deployment (prefix + base name).

    ``partitions``, ``replication`` and ``min_insync`` are keyed by base name; a topic
    not named there has its spec's partitions, ``default_replication`` replicas and
    ``default_min_insync`` (None: the broker's own setting).
    """

    prefix: str = ""
    partitions: dict[str, int] = field(default_factory=dict)
    replication: dict[str, int] = field(default_factory=dict)
    min_insync: dict[str, int] = field(default_factory=dict)
    default_replication: int = 1
    default_min_insync: int | None = None

    def name(self, spec: TopicSpec) -> str:
        return f"{self.prefix}{spec.base}"

    def partition_count(self, spec: TopicSpec) -> int:
        if spec.base == SCORED.base and spec.base not in self.partitions:
            return self.partition_count(TRANSACTIONS)  # decisions follow their transactions
        return self.partitions.get(spec.base, spec.partitions)

    def replication_factor(self, spec: TopicSpec) -> int:
        return self.replication.get(spec.base, self.default_replication)

    def min_insync_replicas(self, spec: TopicSpec) -> int | None:
        return self.min_insync.get(spec.base, self.default_min_insync)

    def problems(self) -> list[str]:
        """What makes this layout unusable (empty when it is fine)."""
        out = []
        scored, txs = self.partition_count(SCORED), self.partition_count(TRANSACTIONS)
        if scored < txs:
            out.append(
                f"{SCORED.base} has {scored} partitions, fewer than {TRANSACTIONS.base} "
                f"({txs}): a decision is written to its transaction's partition number"
            )
        for spec in ALL_TOPICS:
            replicas, insync = self.replication_factor(spec), self.min_insync_replicas(spec)
            if self.partition_count(spec) < 1 or replicas < 1:
                out.append(f"{spec.base}: partitions and replication factor must be >= 1")
            if insync is not None and not 1 <= insync <= replicas:
                out.append(
                    f"{spec.base}: min.insync.replicas {insync} must be between 1 and its "
                    f"replication factor {replicas}"
                )
        return out

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
