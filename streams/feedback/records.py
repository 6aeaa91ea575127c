"""Records of the feedback processor's internal topics and tables (msgspec, compact).

* :class:`ServedRow` - what a label needs from its ``Decision``: ids, times, model version
  and the exact served feature vector; value of the internal ``served`` topic and table.
* :class:`RoutedLabel` - a decoded ``Label`` with the position and bytes of the original
  record (so a label that never finds its decision can be dead-lettered faithfully).
* :class:`Labelled` - the join's output: one label applied to one served decision.
* :class:`WaitingPair` - a pair whose terminal-risk update waits until its label is usable;
  the value (a list per transaction_id) of the ``deferred`` table.
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


class WaitingPair(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    served: ServedRow
    label: Label

    @classmethod
    def of(cls, pair: Labelled) -> WaitingPair:
        return cls(served=pair.served, label=pair.label)

    def pair(self) -> Labelled:
        return Labelled(self.served, self.label)


def label_key(pair: Labelled | WaitingPair) -> tuple[str, str, str, str, datetime]:
    """What identifies one label of one transaction (a replay gives the same key)."""
    label = pair.label
    return (label.transaction_id, label.label, label.source, label.analyst, label.labelled_at)


served_encoder = msgspec.msgpack.Encoder()
served_decoder = msgspec.msgpack.Decoder(ServedRow)
routed_decoder = msgspec.msgpack.Decoder(RoutedLabel)
pending_decoder = msgspec.msgpack.Decoder(list[RoutedLabel])
waiting_decoder = msgspec.msgpack.Decoder(list[WaitingPair])


def pack(record: msgspec.Struct | list[RoutedLabel] | list[WaitingPair]) -> bytes:
    return served_encoder.encode(record)
