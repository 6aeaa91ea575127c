"""Records of the feedback processor's internal topics and tables (msgspec, compact).

* :class:`ServedRow` - what a label needs from its ``Decision``: ids, times, model version
  and the exact served feature vector; value of the internal ``served`` topic and table.
* :class:`RoutedLabel` - a decoded ``Label`` with the position and bytes of the original
  record (so a label that never finds its decision can be dead-lettered faithfully).
* :class:`Labelled` - the join's output: one label applied to one served decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from streams.events import Decision, Label


class ServedRow(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    transaction_id: str
    card_id: str
    terminal_id: str
    event_time: datetime
    amount: float
    score: float
    decision: str
    model_version: str
    feature_set: str
    features: list[float]
    stored_at: float
    """Wall-clock seconds when the processor first saw the decision (retention clock)."""

    @classmethod
    def from_decision(cls, decision: Decision, stored_at: float) -> ServedRow:
        return cls(
            transaction_id=decision.transaction_id,
            card_id=decision.card_id,
            terminal_id=decision.terminal_id,
            event_time=decision.event_time,
            amount=decision.amount,
            score=decision.score,
            decision=decision.decision,
            model_version=decision.model_version,
            feature_set=decision.feature_set,
            features=decision.features,
            stored_at=stored_at,
        )


class RoutedLabel(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    label: Label
    source_topic: str
    partition: int
    offset: int
    original: bytes
    key: bytes | None
    arrived_at: float
    """Wall-clock seconds when the processor first saw the label (wait-timeout clock)."""


@dataclass(frozen=True, slots=True)
class Labelled:
    served: ServedRow
    label: Label


served_encoder = msgspec.msgpack.Encoder()
served_decoder = msgspec.msgpack.Decoder(ServedRow)
routed_decoder = msgspec.msgpack.Decoder(RoutedLabel)
pending_decoder = msgspec.msgpack.Decoder(list[RoutedLabel])


def pack(record: msgspec.Struct | list[RoutedLabel]) -> bytes:
    return served_encoder.encode(record)
