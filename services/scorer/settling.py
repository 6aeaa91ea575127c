"""Settling a sent batch: acknowledged (resending only what failed), marked in the
ledger, committed - or given up when its partitions moved.

The scorer settles one batch late (see :mod:`services.scorer.service`): batch N is
settled after batch N+1's writes went out. Settling can meet every fault of the issue:

* the broker away: :func:`services.scorer.delivery.deliver` waits, keeping the group
  membership alive, and resends only the failed records that are not in the log;
* Redis away for the ledger mark: the scorer's back-off (partitions paused, polled);
* the partitions revoked during a wait (a rebalance callback ran inside the keep-alive
  poll): the callback settles the batch within a delivery timeout or gives it up, and the
  interrupted settle stops there (``closed``);
* the partitions lost or the member fenced: the batch is given up - its writes are let to
  finish so none lands after the new owner read the log, the decisions that landed count
  as decided, nothing is resent or committed, and the records are fetched again if the
  partitions are still assigned.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import msgspec
from confluent_kafka import Message

from features.errors import FeatureStoreUnavailable
from services.scorer import metrics
from services.scorer.crashpoints import CrashHook
from services.scorer.delivery import deliver
from services.scorer.faults import FaultState
from services.scorer.group import ScorerGroup
from services.scorer.ledger import DecisionLedger
from services.scorer.pipeline import ScoredBatch, StageClock
from services.scorer.settings import ScorerSettings
from streams.errors import DeliveryFailed, DeliveryRefused, MembershipLost
from streams.intake import DecodedBatch
from streams.producer import AckedProducer, Deliveries
from streams.topics import Topics

log = logging.getLogger("fraud.scorer")
T = TypeVar("T")


class _DecisionId(msgspec.Struct):
    transaction_id: str


_decision_id = msgspec.json.Decoder(_DecisionId)


@dataclass
class Unsettled:
    """A batch whose writes are sent but not yet acknowledged, committed or in the ledger."""

    messages: Sequence[Message]
    batch: DecodedBatch
    scored: ScoredBatch
    deliveries: Deliveries
    ids: frozenset[str] = frozenset()
    """The decided transaction ids (what the next batch's dedupe must treat as decided)."""
    closed: bool = False
    """Settled or given up (possibly by a rebalance callback during a wait)."""


class Backoff(Protocol):
    def __call__(self, step: Callable[[], T], generation: int) -> T: ...


class Settler:
    def __init__(
        self,
        settings: ScorerSettings,
        topics: Topics,
        producer: AckedProducer,
        group: ScorerGroup,
        ledger: DecisionLedger,
        faults: FaultState,
        crash: CrashHook,
        with_backoff: Backoff,
        running: Callable[[], bool],
        written: Callable[[frozenset[str]], None],
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.producer = producer
        self.group = group
        self.ledger = ledger
        self.faults = faults
        self.crash = crash
        self.with_backoff = with_backoff
        self.running = running
        self.written = written
        """Told the decisions of a given-up batch that are in the log anyway."""
        self.unsettled: Unsettled | None = None
        self.decided = 0

    def settle(self, clock: StageClock | None = None, *, synchronous: bool = False) -> None:
        """The unsettled batch, if any: wait for its acks, mark it decided, commit."""
        unsettled = self.unsettled
        if unsettled is None:
            return
        generation = self.group.generation
        try:
            self._wait_acked(unsettled, generation)
            if unsettled.closed:  # a rebalance settled or gave it up during the wait
                return
            self.crash.reached("after_ack")
            ids = [d.transaction_id for d in unsettled.scored.decisions]
            self.with_backoff(lambda: self.ledger.mark_decided(ids), generation)
            if unsettled.closed:
                return
            self.crash.reached("after_mark")
            self._commit(unsettled, synchronous)  # only now: everything is acknowledged
            self.crash.reached("after_commit")
        except MembershipLost as exc:
            self.abandon(unsettled, "revoked", str(exc))
        except DeliveryFailed as exc:
            if isinstance(exc, DeliveryRefused) or not unsettled.closed:
                raise
            # a rebalance callback (run by the wait's poll) gave the batch up meanwhile
        finally:
            if self.unsettled is unsettled:
                self.unsettled = None
        if clock is not None:
            clock.lap("commit")

    def revoked(self, lost: bool) -> None:
        """Inside a rebalance callback (no poll may run there, the rebalance waits for
        it). Revoked - still ours until the callback returns: settle within a delivery
        timeout, or give the batch up. Lost - someone else's already: give it up."""
        unsettled = self.unsettled
        if unsettled is None or unsettled.closed:
            return
        if lost:
            self.abandon(unsettled, "lost")
            return
        try:
            self._wait_acked(unsettled, self.group.generation, bounded=True)
        except (DeliveryFailed, MembershipLost) as exc:
            self.abandon(unsettled, "revoked", str(exc))
            return
        with contextlib.suppress(FeatureStoreUnavailable):  # the commit makes it unneeded
            self.ledger.mark_decided([d.transaction_id for d in unsettled.scored.decisions])
        self._commit(unsettled, synchronous=True)

    def _commit(self, unsettled: Unsettled, synchronous: bool) -> None:
        self.group.commit(unsettled.messages, synchronous)
        unsettled.closed = True
        self.decided += len(unsettled.ids)

    def abandon(self, unsettled: Unsettled, reason: str, detail: str = "") -> None:
        """Give a sent batch up: not resent, not committed; its new owner replays it. Its
        writes are first let to finish (acknowledged or failed) so none lands after that
        owner read the log; the decisions that did land count as decided here."""
        unsettled.closed = True
        with contextlib.suppress(DeliveryFailed):
            self.producer.wait_for(
                unsettled.deliveries, self.settings.delivery_timeout_ms / 1000 + 5
            )
        failed = {
            _decision_id.decode(r.value).transaction_id
            for r in unsettled.deliveries.failed
            if r.topic == self.topics.scored and r.value is not None
        }
        landed = unsettled.ids - failed
        self.written(landed)
        metrics.BATCHES_ABANDONED.labels(reason).inc()
        log.warning(
            "stage=abandon batch of %d decisions (%d written) not committed (%s) %s",
            len(unsettled.ids),
            len(landed),
            reason,
            detail,
        )
        self.group.rewind(unsettled.messages)
        if self.unsettled is unsettled:
            self.unsettled = None

    def _wait_acked(self, unsettled: Unsettled, generation: int, bounded: bool = False) -> None:
        """Until the broker acknowledged the batch's writes, resending only what failed."""
        deliver(
            self.producer,
            unsettled.deliveries,
            bootstrap=self.settings.kafka(),
            faults=self.faults,
            keep_alive=self.group.keep_alive,
            still_ours=lambda: self._still_ours(unsettled, generation),
            running=lambda: self.running() and not unsettled.closed,
            answer_timeout_s=self.settings.delivery_timeout_ms / 1000 + 5,
            deadline_s=self.settings.delivery_timeout_ms / 1000 if bounded else None,
        )

    def _still_ours(self, unsettled: Unsettled, generation: int) -> bool:
        if unsettled.closed or self.group.generation != generation:
            return False
        return self.group.in_callback or self.group.confirm(unsettled.messages)
