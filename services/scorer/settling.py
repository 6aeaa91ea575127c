"""Settling a sent batch: its review cases sent once their reasons are computed, all
its writes acknowledged (resending only what failed), marked in the ledger, committed -
or given up when its partitions moved.

The scorer settles late (see :mod:`services.scorer.service`): after batch N+1's writes
went out, the batches before it are settled in order, each once its review cases are
sent (their reasons come from :mod:`services.scorer.reasons`, off the decisions' path).
At most ``max_unsettled_batches`` batches are held when the scorer polls: past that it
waits for the oldest one's reasons. Later batches are never committed before earlier
ones; giving a batch up gives up every batch after it too (their offsets follow its).
Settling can meet every fault of the issue:

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
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
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
from services.scorer.reasons import Flagged, done
from services.scorer.settings import ScorerSettings
from streams.errors import DeliveryFailed, DeliveryRefused, MembershipLost
from streams.events import Decision, ReviewCase
from streams.intake import DecodedBatch
from streams.producer import AckedProducer, Deliveries, produce_decisions
from streams.topics import Topics

log = logging.getLogger("fraud.scorer")
T = TypeVar("T")


class _DecisionId(msgspec.Struct):
    transaction_id: str


class _CaseId(msgspec.Struct):
    case_id: str


_decision_id = msgspec.json.Decoder(_DecisionId)
_case_id = msgspec.json.Decoder(_CaseId)


@dataclass(eq=False)
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
    cases: Future[list[ReviewCase]] = field(default_factory=lambda: done([]))
    """Its review cases, once their reasons are computed."""
    flagged: Sequence[Flagged] = ()
    """Whose review cases ``cases`` holds (owed again if the batch is given up)."""
    cases_sent: bool = False
    """The review cases are queued in ``deliveries``."""


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
        written: Callable[[frozenset[str], dict[str, Decision]], None],
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
        """Told the decisions of a given-up batch that are in the log anyway, and the
        flagged ones among them still owed a review case."""
        self.pending: deque[Unsettled] = deque()
        """Sent batches not yet settled, oldest first."""
        self.decided = 0

    @property
    def unsettled(self) -> Unsettled | None:
        """The batch sent last, if it is not settled."""
        return self.pending[-1] if self.pending else None

    def sent_ids(self) -> frozenset[str]:
        """The transaction ids decided by the batches not settled yet."""
        if len(self.pending) == 1:
            return self.pending[0].ids
        return frozenset().union(*(u.ids for u in self.pending))

    def messages(self) -> list[Message]:
        return [m for u in self.pending for m in u.messages]

    def add(self, unsettled: Unsettled) -> None:
        """A batch whose decisions are sent; settled by :meth:`settle_sent` or :meth:`settle`.
        With nothing to explain, its review cases (owed ones it resends) go out at once."""
        self.pending.append(unsettled)
        if unsettled.cases.done():
            self._send_cases(unsettled)

    def clear(self) -> None:
        """Forget the sent batches (not settled, not committed: they replay)."""
        self.pending.clear()

    def settle_sent(self, clock: StageClock | None = None) -> None:
        """After a batch was sent: settle the batches before it whose review cases went
        out earlier (their acks had this batch's scoring to arrive) - and, while more than
        ``max_unsettled_batches`` are held, the oldest whatever it waits for; then queue
        the review cases whose reasons are ready (settled after the next batch)."""
        bound = self.settings.max_unsettled_batches
        while len(self.pending) > 1:
            head = self.pending[0]
            if not head.cases_sent and len(self.pending) <= bound:
                break
            self._settle(head, synchronous=False)
        self.send_ready_cases()
        if clock is not None:
            clock.lap("commit")

    def send_ready_cases(self) -> None:
        """Queue the review cases of every sent batch whose reasons are computed."""
        for unsettled in list(self.pending):
            if not unsettled.cases_sent and not unsettled.closed and unsettled.cases.done():
                self._send_cases(unsettled)

    def settle(self, clock: StageClock | None = None, *, synchronous: bool = False) -> None:
        """Every sent batch, oldest first: its review cases sent, its acks waited for,
        marked decided, committed."""
        while self.pending:
            self._settle(self.pending[0], synchronous)
        if clock is not None:
            clock.lap("commit")

    def _send_cases(self, unsettled: Unsettled) -> None:
        cases = unsettled.cases.result()  # waits for the reasons if they are not ready
        if unsettled.closed:
            return
        if cases:  # a crash here leaves the batch's decisions in the log (flushed by the
            # test hook) without their review cases: the replay owes them (.recovery)
            self.crash.reached("before_cases", prepare=lambda: self.producer.flush(10))
        produce_decisions(self.producer, self.topics, [], cases, group=unsettled.deliveries)
        unsettled.cases_sent = True

    def _settle(self, unsettled: Unsettled, synchronous: bool) -> None:
        """One sent batch: wait for its review cases and its acks, mark it, commit it."""
        generation = self.group.generation
        try:
            if not unsettled.cases_sent:
                self._send_cases(unsettled)
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
            self._drop(unsettled)

    def _drop(self, unsettled: Unsettled) -> None:
        if unsettled in self.pending:
            self.pending.remove(unsettled)

    def revoked(self, lost: bool) -> None:
        """Inside a rebalance callback (no poll may run there, the rebalance waits for
        it). Revoked - still ours until the callback returns: settle each sent batch
        within a delivery timeout, or give it (and those after it) up. Lost - someone
        else's already: give them up."""
        while self.pending:
            unsettled = self.pending[0]
            if unsettled.closed:
                self._drop(unsettled)
                continue
            if lost:
                self.abandon(unsettled, "lost")
                return
            try:
                if not unsettled.cases_sent:
                    self._send_cases(unsettled)
                self._wait_acked(unsettled, self.group.generation, bounded=True)
            except (DeliveryFailed, MembershipLost) as exc:
                self.abandon(unsettled, "revoked", str(exc))
                return
            with contextlib.suppress(FeatureStoreUnavailable):  # the commit makes it unneeded
                self.ledger.mark_decided([d.transaction_id for d in unsettled.scored.decisions])
            self._commit(unsettled, synchronous=True)
            self._drop(unsettled)

    def _commit(self, unsettled: Unsettled, synchronous: bool) -> None:
        self.group.commit(unsettled.messages, synchronous)
        unsettled.closed = True
        self.decided += len(unsettled.ids)

    def abandon_all(self, reason: str, detail: str = "") -> None:
        """Give every sent batch up (see :meth:`abandon`)."""
        if self.pending:
            self.abandon(self.pending[0], reason, detail)
        self.pending.clear()

    def abandon(self, unsettled: Unsettled, reason: str, detail: str = "") -> None:
        """Give a sent batch up, with every batch sent after it (their offsets follow its):
        not resent, not committed; their new owner replays them. Their writes are first
        let to finish (acknowledged or failed) so none lands after that owner read the
        log; the decisions that did land count as decided here, and the flagged ones
        whose review case did not land are owed one."""
        given_up = [unsettled]
        if unsettled in self.pending:
            at = self.pending.index(unsettled)
            given_up = list(self.pending)[at:]
        for batch in given_up:
            self._give_up(batch, reason, detail)
            self._drop(batch)
        self.group.rewind([m for batch in given_up for m in batch.messages])

    def _give_up(self, unsettled: Unsettled, reason: str, detail: str) -> None:
        unsettled.closed = True
        with contextlib.suppress(DeliveryFailed):
            self.producer.wait_for(
                unsettled.deliveries, self.settings.delivery_timeout_ms / 1000 + 5
            )
        failed: set[str] = set()
        cases_failed: set[str] = set()
        for r in unsettled.deliveries.failed:
            if r.topic == self.topics.scored and r.value is not None:
                failed.add(_decision_id.decode(r.value).transaction_id)
            elif r.topic == self.topics.review and r.value is not None:
                cases_failed.add(_case_id.decode(r.value).case_id)
        landed = unsettled.ids - failed
        owed = {
            d.transaction_id: d
            for group in unsettled.flagged
            for d in group.decisions
            if (d.transaction_id in landed or d.transaction_id not in unsettled.ids)
            and (not unsettled.cases_sent or d.transaction_id in cases_failed)
        }  # (an owed case resent by this batch is not among its decided ids)
        self.written(landed, owed)
        self.decided += len(landed)  # in the log: their new owner skips them
        metrics.BATCHES_ABANDONED.labels(reason).inc()
        log.warning(
            "stage=abandon batch of %d decisions (%d written, %d owe a review case) not "
            "committed (%s) %s",
            len(unsettled.ids),
            len(landed),
            len(owed),
            reason,
            detail,
        )

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
