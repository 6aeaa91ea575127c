"""The API's audit log: every decision it answers is also written to ``transactions.scored``
(flagged ones to ``fraud.review`` too), as the stream scorer writes its own.

Two delivery modes (``FRAUD_AUDIT_DELIVERY``):

- ``acked`` (default): the response waits for the broker's acknowledgement; a failed or
  timed-out write answers 503, so every decision a client received is in the log.
- ``async``: the response leaves once the records are queued in the idempotent producer;
  a background thread serves the acknowledgements. Only acknowledged decisions enter the
  ledger (the dedupe record); a failed write is logged and counted
  (``fraud_api_audit_records_total{outcome="failed"}``), never retried blindly. What a crash
  can lose: the records queued but not yet acknowledged (about one broker round trip of
  traffic); a client's retry of such a transaction is scored and logged again.
  Meant for a broker whose acknowledgements are slow (remote, ``acks=all`` across zones).
  On the embedded broker here it did not pay: the acknowledgement takes well under a
  millisecond at 200 requests/s, and the background thread's share of the GIL made the
  tail longer (``make bench`` measures both modes).

Either way a transaction being written is claimed in this process, so a concurrent or
quick retry of it is answered without a second record.

:meth:`AuditLog.write` is a coroutine: in ``acked`` mode it serves the producer's
delivery reports in short polls and yields to the event loop between them, so the API
answers health checks and other requests while a write waits for the broker (a blocking
``flush`` would stall the whole loop for up to the acknowledgement timeout when the broker
is down).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, Message
from prometheus_client import Counter, Gauge

from features.errors import FeatureStoreUnavailable
from services.scorer.ledger import DecisionLedger
from streams.errors import DeliveryFailed
from streams.events import Decision, ReviewCase
from streams.producer import AckedProducer, produce_decisions
from streams.topics import Topics

AuditDelivery = Literal["acked", "async"]
ACK_POLL_S = 0.002
"""The longest the event loop is held by one poll for delivery reports (a poll returns as
soon as a report is served, normally well under a millisecond after the produce)."""
AUDIT_RECORDS = Counter(
    "fraud_api_audit_records_total",
    "API decisions written to transactions.scored (with their review cases), by outcome",
    ["outcome"],
)
AUDIT_IN_FLIGHT = Gauge(
    "fraud_api_audit_in_flight", "API decisions written but not yet acknowledged"
)
log = logging.getLogger(__name__)


@dataclass
class _Receipt:
    """The records of one request: outstanding until every delivery report is in."""

    transaction_ids: list[str]
    outstanding: int
    failures: list[str] = field(default_factory=list)


class AuditLog:
    def __init__(
        self,
        producer: AckedProducer,
        topics: Topics,
        ledger: DecisionLedger,
        delivery: AuditDelivery,
        *,
        ack_timeout_s: float = 10.0,
        poll_interval_s: float = 0.02,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._ledger = ledger
        self.delivery = delivery
        self._ack_timeout_s = ack_timeout_s
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._done: list[_Receipt] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """In ``async`` mode, start serving acknowledgements in the background."""
        if self.delivery == "async" and self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="audit-acks", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the background thread and wait for what is still outstanding."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._producer.flush(timeout_s)
        self._settle()

    def claim(self, transaction_ids: Sequence[str], fresh: npt.NDArray[np.bool_]) -> Any:
        """Of the ``fresh`` (not yet decided) ids, those no other request is writing now;
        they are claimed until their records are settled."""
        out = fresh.copy()
        with self._lock:
            for i, tid in enumerate(transaction_ids):
                if out[i]:
                    if tid in self._in_flight:
                        out[i] = False
                    else:
                        self._in_flight.add(tid)
            AUDIT_IN_FLIGHT.set(len(self._in_flight))
        return out

    async def write(self, decisions: Sequence[Decision], cases: Sequence[ReviewCase]) -> None:
        """Write claimed decisions (and their review cases); in ``acked`` mode wait for the
        broker and raise :class:`DeliveryFailed` if it did not take them."""
        receipt = self._send(decisions, cases)
        if receipt is None or self.delivery == "async":
            return
        deadline = time.monotonic() + self._ack_timeout_s
        while receipt.outstanding and (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(ACK_POLL_S, left))
            await asyncio.sleep(0)
        self._settle()
        if receipt.outstanding or receipt.failures:
            detail = receipt.failures[0] if receipt.failures else "not acknowledged"
            raise DeliveryFailed(self._topics.scored, f"{detail} ({receipt.outstanding} left)")

    def _send(self, decisions: Sequence[Decision], cases: Sequence[ReviewCase]) -> _Receipt | None:
        """Queue the records; their delivery reports count down the returned receipt."""
        receipt = _Receipt([d.transaction_id for d in decisions], len(decisions) + len(cases))
        if not receipt.outstanding:
            return None

        def report(err: KafkaError | None, _msg: Message) -> None:
            with self._lock:
                receipt.outstanding -= 1
                if err is not None:
                    receipt.failures.append(str(err))
                if receipt.outstanding == 0:
                    self._done.append(receipt)

        try:
            produce_decisions(self._producer, self._topics, decisions, cases, on_delivery=report)
        except Exception:
            self._release(receipt.transaction_ids)
            raise
        return receipt

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(self._poll_interval_s)
            self._settle()

    def _settle(self) -> None:
        """Enter the acknowledged decisions in the ledger, count the failed ones, release
        both (the ledger first, so a retry never finds neither)."""
        with self._lock:
            done, self._done = self._done, []
        if not done:
            return
        acked = [tid for r in done if not r.failures for tid in r.transaction_ids]
        for r in done:
            if r.failures:
                AUDIT_RECORDS.labels("failed").inc(len(r.transaction_ids))
                log.error(
                    "audit write failed for %d decisions: %s", len(r.transaction_ids), r.failures[0]
                )
        if acked:
            try:
                self._ledger.mark_decided(acked)
            except FeatureStoreUnavailable as exc:
                log.error(
                    "ledger unavailable, %d acknowledged decisions not entered: %s", len(acked), exc
                )
            AUDIT_RECORDS.labels("acked").inc(len(acked))
        self._release([tid for r in done for tid in r.transaction_ids])

    def _release(self, transaction_ids: Sequence[str]) -> None:
        with self._lock:
            self._in_flight.difference_update(transaction_ids)
            AUDIT_IN_FLIGHT.set(len(self._in_flight))
