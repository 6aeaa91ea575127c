"""Recent decisions per card for the analyst's view, fed from ``transactions.scored``.

Bounded: at most ``max_cards`` cards (least recently updated evicted) and ``per_card``
decisions each. Fed by a group-less consumer that starts ``lookback_s`` back in time.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.events import Decision
from streams.kafka import Endpoint, consumer_config
from streams.serde import decision_decoder


@dataclass(frozen=True)
class HistoryItem:
    transaction_id: str
    event_time: str
    amount: float
    score: float
    decision: str


class CardHistory:
    def __init__(self, max_cards: int = 10_000, per_card: int = 10) -> None:
        self.max_cards = max_cards
        self.per_card = per_card
        self._cards: OrderedDict[str, deque[HistoryItem]] = OrderedDict()

    def add(self, decision: Decision) -> None:
        items = self._cards.pop(decision.card_id, None) or deque(maxlen=self.per_card)
        if all(i.transaction_id != decision.transaction_id for i in items):
            items.append(
                HistoryItem(
                    decision.transaction_id,
                    decision.event_time.isoformat(),
                    decision.amount,
                    decision.score,
                    decision.decision,
                )
            )
        self._cards[decision.card_id] = items
        while len(self._cards) > self.max_cards:
            self._cards.popitem(last=False)

    def recent(self, card_id: str, exclude: str | None = None) -> list[HistoryItem]:
        return [i for i in self._cards.get(card_id, ()) if i.transaction_id != exclude]

    def __len__(self) -> int:
        return len(self._cards)


class HistoryFeed:
    """Polls ``transactions.scored`` into a :class:`CardHistory` (call :meth:`poll` often)."""

    def __init__(
        self, bootstrap: Endpoint, topic: str, history: CardHistory, lookback_s: float
    ) -> None:
        self.history = history
        self.consumer = Consumer(
            consumer_config(
                bootstrap,
                group_id=f"review-history-{uuid.uuid4().hex[:8]}",
                client_id="review-history",
            )
        )
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        start_ms = int((time.time() - lookback_s) * 1000)
        wanted = [TopicPartition(topic, p, start_ms) for p in partitions]
        self.consumer.assign(self.consumer.offsets_for_times(wanted, timeout=10))

    def poll(self, max_messages: int = 1000, timeout_s: float = 0.0) -> int:
        count = 0
        for message in self.consumer.consume(max_messages, timeout_s):
            if message.error() is None:
                decision = decision_decoder.decode(message.value())
                if isinstance(decision, Decision):
                    self.history.add(decision)
                    count += 1
        return count

    def close(self) -> None:
        self.consumer.close()
