"""Getting one batch's writes acknowledged: resend only what failed, stop on what cannot
succeed, never write for partitions the scorer no longer holds.

A batch's decisions, review cases and dead letters are one :class:`Deliveries` group.
When some fail (the broker stopped, restarted, lost a leader), the scorer:

1. waits until every record of the group is answered (acknowledged or failed) - a record
   still in flight may yet land, so resending it would write it twice;
2. waits for the broker to answer again, keeping its group membership alive meanwhile;
3. checks the batch's partitions are still its own (a fenced or revoked batch is not
   resent: its new owner replays it);
4. reads back the failed records' partitions and drops those already there (a timeout in
   flight can hide a write: :mod:`streams.landed`);
5. resends the rest, and only the rest, and waits again.

A permanent failure (the topic is gone, writing is not authorised, a fatal producer error)
raises :class:`streams.errors.DeliveryRefused`: the scorer stops with the reason instead
of looping; the batch is not committed and replays once the cause is fixed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaException

from services.scorer import metrics
from services.scorer.faults import FaultState
from streams.errors import BrokerUnavailable, DeliveryFailed, DeliveryRefused, MembershipLost
from streams.kafka import Endpoint, admin_client, broker_reachable
from streams.landed import landed
from streams.producer import AckedProducer, Deliveries, FailedRecord

log = logging.getLogger("fraud.scorer")


def deliver(
    producer: AckedProducer,
    group: Deliveries,
    *,
    bootstrap: Endpoint,
    faults: FaultState,
    keep_alive: Callable[[], None],
    still_ours: Callable[[], bool],
    running: Callable[[], bool],
    answer_timeout_s: float,
    deadline_s: float | None = None,
) -> None:
    """Return once every record of ``group`` is acknowledged (see the module doc).

    Raises :class:`DeliveryRefused` (permanent), :class:`MembershipLost` (the batch is no
    longer the scorer's: not resent), or :class:`DeliveryFailed` when stopping or past
    ``deadline_s`` (nothing is committed then; the batch replays).
    """
    give_up = None if deadline_s is None else time.monotonic() + deadline_s
    while True:
        try:
            producer.wait_for(group, answer_timeout_s, idle=keep_alive)
            faults.end("broker")
            return
        except DeliveryRefused:
            raise
        except DeliveryFailed as exc:
            faults.begin("broker", f"writes not acknowledged: {exc.detail}")
            metrics.BACKPRESSURE.labels("producer").inc()
            if not running() or (give_up is not None and time.monotonic() > give_up):
                raise
            if not exc.records:  # answers still outstanding: keep waiting for them
                continue
            _wait_for_broker(bootstrap, keep_alive, running, give_up)
            if not still_ours():
                raise MembershipLost(
                    "the batch's partitions moved while its writes failed"
                ) from exc
            _refuse_missing_topics(bootstrap, exc.records)
            if not _resend_missing(producer, group, exc.records, bootstrap):
                keep_alive()  # not read back yet: the group still holds them; ask again
                time.sleep(0.5)


def _wait_for_broker(
    bootstrap: Endpoint,
    keep_alive: Callable[[], None],
    running: Callable[[], bool],
    give_up: float | None,
) -> None:
    while not broker_reachable(bootstrap, timeout_s=1.0):
        keep_alive()
        if not running():
            raise DeliveryFailed("*", "stopped while waiting for the broker")
        if give_up is not None and time.monotonic() > give_up:
            raise DeliveryFailed("*", "the broker did not come back in time")
        time.sleep(0.2)


def _refuse_missing_topics(bootstrap: Endpoint, records: list[FailedRecord]) -> None:
    """A record refused for an unknown topic is permanent once the broker, answering
    again, confirms the topic does not exist."""
    topics = {r.topic for r in records if r.topic_missing}
    if not topics:
        return
    try:
        known = admin_client(bootstrap, quiet=True).list_topics(timeout=10).topics
    except KafkaException:
        return  # not confirmed: treated as transient
    gone = sorted(t for t in topics if t not in known)
    if gone:
        raise DeliveryRefused(gone[0], f"topic {gone[0]} does not exist")


def _resend_missing(
    producer: AckedProducer, group: Deliveries, records: list[FailedRecord], bootstrap: Endpoint
) -> bool:
    """Resend the failed records not already in the log; False if that cannot be told
    yet (nothing resent, the group keeps its failures)."""
    try:
        there = landed(bootstrap, records)
    except BrokerUnavailable as exc:
        log.warning("stage=produce cannot read back the failed records yet: %s", exc.detail)
        return False
    missing = [r for r, found in zip(records, there, strict=True) if not found]
    metrics.RECORDS_RESENT.inc(len(missing))
    metrics.RECORDS_LANDED.inc(len(records) - len(missing))
    log.warning(
        "stage=produce resending %d of %d failed records (%d already in the log): %s",
        len(missing),
        len(records),
        len(records) - len(missing),
        records[0].reason,
    )
    producer.resend(group, missing)
    return True
