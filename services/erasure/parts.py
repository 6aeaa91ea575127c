"""What one erasure removes, store by store. Each part is idempotent: run twice, the
second run removes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import redis

from features.realtime.layout import card_key
from features.training_store import TrainingStore


@dataclass
class Subject:
    """Whose data: the customer, their cards, and the transactions found along the way."""

    customer_id: str
    card_ids: set[str]
    transaction_ids: set[str] = field(default_factory=set)

    def ids(self) -> set[str]:
        """Every identifier that must not remain anywhere."""
        return {self.customer_id, *self.card_ids}


class ErasurePart(Protocol):
    name: str

    def erase(self, subject: Subject) -> dict[str, int]:
        """Remove the subject's data from this store; counts of what was removed."""
        ...


class TrainingStorePart:
    """Labelled rows and audit lines of the cards; the cards join the forget list."""

    name = "training_store"

    def __init__(self, store: TrainingStore) -> None:
        self.store = store

    def erase(self, subject: Subject) -> dict[str, int]:
        erased = self.store.erase(subject.card_ids)
        subject.transaction_ids |= erased.transaction_ids
        return {"rows": erased.rows, "audit_lines": erased.audit_lines}


class RedisPart:
    """Card state (the velocity windows), decision-ledger marks and demo ground truth of
    the subject's transactions. Terminal state is per terminal (counts of every card's
    transactions) and holds nothing of one customer."""

    name = "redis"

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def erase(self, subject: Subject) -> dict[str, int]:
        cards = [card_key(self.prefix, c) for c in sorted(subject.card_ids)]
        marks = [
            f"{self.prefix}:{kind}:{tid}"
            for tid in sorted(subject.transaction_ids)
            for kind in ("decided", "truth")
        ]
        return {"card_keys": self._delete(cards), "transaction_keys": self._delete(marks)}

    def _delete(self, keys: list[str]) -> int:
        # one key per call: on Redis Cluster a multi-key DEL must stay in one slot
        return sum(int(self.client.delete(key)) for key in keys)

    def remaining(self, subject: Subject) -> list[str]:
        """Keys under this deployment's prefix whose name still holds one of the ids."""
        ids = subject.ids() | subject.transaction_ids
        return [
            name
            for name in _scan_names(self.client, f"{self.prefix}:*")
            if any(i in name for i in ids)
        ]


def _scan_names(client: redis.Redis, pattern: str) -> Iterator[str]:
    for key in client.scan_iter(match=pattern, count=1000):
        yield key.decode(errors="replace") if isinstance(key, bytes) else str(key)


def merge(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in counts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out
