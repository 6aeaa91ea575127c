"""Matching decisions to sends by transaction_id: the end-to-end latency of each transaction.

Pure bookkeeping, no I/O and no clock of its own: the caller passes monotonic times, so
unit tests drive it with a fake clock. Every transaction handed to :meth:`sent` gets
exactly one outcome reported to ``report``:

* its decision was read            -> success, produce -> decision readable;
* its produce was not acknowledged -> failure (:class:`ProduceFailed`) at the ack;
* no decision within ``timeout_s`` -> failure (:class:`DecisionTimeout`), time waited.

Produce acknowledgements are reported too, under their own name, so a run's stats show
how many transactions reached the broker next to how many were decided.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from streams.errors import FraudError

E2E = "e2e decision"
ACK = "produce ack"

Report = Callable[[str, float, Exception | None], None]
"""``report(name, response_time_ms, error_or_None)``: Locust's request event, or a fake."""


class DecisionTimeout(FraudError):
    """No decision was read for a sent transaction within the timeout."""

    def __init__(self, transaction_id: str, timeout_s: float) -> None:
        # the message names no transaction, so Locust groups all timeouts in one failure row
        super().__init__(f"no decision within {timeout_s:g} s")
        self.transaction_id = transaction_id
        self.timeout_s = timeout_s


class ProduceFailed(FraudError):
    """The broker did not acknowledge the transaction; no decision can follow."""

    def __init__(self, transaction_id: str, detail: str) -> None:
        super().__init__(f"produce not acknowledged: {detail}")
        self.transaction_id = transaction_id
        self.detail = detail


@dataclass
class TrackerCounts:
    sent: int = 0
    acked: int = 0
    decided: int = 0
    timed_out: int = 0
    produce_failed: int = 0
    foreign: int = 0  # decisions for transactions this tracker did not send (other runs)

    @property
    def reported(self) -> int:
        return self.decided + self.timed_out + self.produce_failed


class DecisionTracker:
    def __init__(self, report: Report, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self._report = report
        self.timeout_s = timeout_s
        self._pending: OrderedDict[str, float] = OrderedDict()  # send order = expiry order
        self.counts = TrackerCounts()

    @property
    def outstanding(self) -> int:
        """Sent transactions still waiting for their decision."""
        return len(self._pending)

    def sent(self, transaction_id: str, at: float) -> None:
        self._pending[transaction_id] = at
        self.counts.sent += 1

    def acked(self, transaction_id: str, sent_at: float, at: float, error: str | None) -> None:
        """The produce's delivery report; a failed one settles the transaction at once."""
        failure = None if error is None else ProduceFailed(transaction_id, error)
        self._report(ACK, (at - sent_at) * 1000.0, failure)
        if failure is None:
            self.counts.acked += 1
            return
        if self._pending.pop(transaction_id, None) is not None:
            self.counts.produce_failed += 1
            self._report(E2E, (at - sent_at) * 1000.0, failure)

    def decided(self, transaction_id: str, at: float) -> bool:
        """A decision became readable at ``at``; False if it is not one of ours."""
        sent_at = self._pending.pop(transaction_id, None)
        if sent_at is None:
            self.counts.foreign += 1
            return False
        self.counts.decided += 1
        self._report(E2E, (at - sent_at) * 1000.0, None)
        return True

    def expire(self, now: float) -> int:
        """Report every transaction waiting longer than the timeout as failed."""
        return self._expire_before(now - self.timeout_s, now)

    def expire_all(self, now: float) -> int:
        """End of a run: whatever is still waiting failed."""
        return self._expire_before(float("inf"), now)

    def _expire_before(self, cutoff: float, now: float) -> int:
        expired = 0
        pending = self._pending
        while pending:
            transaction_id, sent_at = next(iter(pending.items()))
            if sent_at > cutoff:
                break
            pending.popitem(last=False)
            expired += 1
            self._report(
                E2E, (now - sent_at) * 1000.0, DecisionTimeout(transaction_id, self.timeout_s)
            )
        self.counts.timed_out += expired
        return expired
