"""The label/decision join, free of faust: two key-value tables and a clock.

* ``served``: transaction_id -> packed :class:`ServedRow`, kept for ``retention_s`` after
  the processor first saw the decision (later labels, e.g. chargebacks, still join).
* ``pending``: transaction_id -> packed list of :class:`RoutedLabel` that arrived before
  their decision. They are released when the decision arrives, or returned by
  :meth:`FeedbackJoin.expire` after ``label_wait_s`` (the caller dead-letters them with
  reason ``unknown_transaction``).

The tables are any ``MutableMapping[bytes, bytes]``: faust tables in the processor (every
write goes to the changelog), plain dicts in unit tests. Every method is synchronous, so
no other coroutine can interleave between a lookup and the write that depends on it.

Replays are harmless: a re-delivered decision overwrites its row with the same content
(and keeps the first ``stored_at``), a re-delivered label yields the same pair again, and
the sink is idempotent per label.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

import msgspec

from streams.feedback.records import (
    Labelled,
    RoutedLabel,
    ServedRow,
    pack,
    pending_decoder,
    served_decoder,
)

Table = MutableMapping[bytes, bytes]


@dataclass
class Expired:
    labels: list[RoutedLabel] = field(default_factory=list)
    """Labels whose decision did not arrive within the wait: dead-letter them."""
    served_rows: int = 0
    """Served rows dropped after the retention window."""


class FeedbackJoin:
    def __init__(
        self,
        served: Table,
        pending: Table,
        *,
        retention_s: float,
        label_wait_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.served = served
        self.pending = pending
        self.retention_s = retention_s
        self.label_wait_s = label_wait_s
        self.clock = clock
        self._order: deque[tuple[float, bytes]] = deque()
        self._order_built = False

    def on_decision(self, row: ServedRow) -> list[Labelled]:
        """Store a served row; return the pairs of the labels that were waiting for it."""
        key = row.transaction_id.encode()
        known = self.served.get(key)
        if known is not None:  # a replay: keep the first retention clock
            row = msgspec.structs.replace(row, stored_at=served_decoder.decode(known).stored_at)
        else:
            self._order.append((row.stored_at, key))
        self.served[key] = pack(row)
        waiting = self.pending.get(key)
        if waiting is None:
            return []
        del self.pending[key]
        return [Labelled(row, routed.label) for routed in pending_decoder.decode(waiting)]

    def on_label(self, routed: RoutedLabel) -> list[Labelled]:
        """Join a label with its served row, or park it until the decision arrives."""
        key = routed.label.transaction_id.encode()
        known = self.served.get(key)
        if known is not None:
            return [Labelled(served_decoder.decode(known), routed.label)]
        waiting = self.pending.get(key)
        parked = pending_decoder.decode(waiting) if waiting is not None else []
        if not any(_same(p, routed) for p in parked):  # a replayed label parks once
            parked.append(routed)
            self.pending[key] = pack(parked)
        return []

    def expire(self, now: float | None = None) -> Expired:
        """Drop served rows past retention; return labels that waited too long."""
        now = self.clock() if now is None else now
        out = Expired()
        self._expire_served(now, out)
        for key, value in list(self.pending.items()):
            parked = pending_decoder.decode(value)
            late = [p for p in parked if now - p.arrived_at >= self.label_wait_s]
            if not late:
                continue
            out.labels.extend(late)
            keep = [p for p in parked if now - p.arrived_at < self.label_wait_s]
            if keep:
                self.pending[key] = pack(keep)
            else:
                del self.pending[key]
        return out

    def reindex(self) -> None:
        """Forget the retention order (after a table recovery it is rebuilt on next expire)."""
        self._order.clear()
        self._order_built = False

    def _expire_served(self, now: float, out: Expired) -> None:
        if not self._order_built:
            stamps = [(served_decoder.decode(v).stored_at, k) for k, v in self.served.items()]
            self._order = deque(sorted(stamps))
            self._order_built = True
        cutoff = now - self.retention_s
        while self._order and self._order[0][0] <= cutoff:
            stored_at, key = self._order.popleft()
            value = self.served.get(key)
            if value is not None and served_decoder.decode(value).stored_at == stored_at:
                del self.served[key]
                out.served_rows += 1


def _same(a: RoutedLabel, b: RoutedLabel) -> bool:
    return (a.source_topic, a.partition, a.offset) == (b.source_topic, b.partition, b.offset)
