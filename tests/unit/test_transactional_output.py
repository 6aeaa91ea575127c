"""The transactions mode against a fake producer at the client boundary: the call order of
one batch, a retried commit, an abort that replays, a stale group generation, a fencing.
(The embedded broker runs transactions but does not check the group generation, so the
zombie fencing of exactly-once v2 is only driven here.)"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from services.scorer.settings import ScorerSettings
from services.scorer.transactional import (
    TransactionAborted,
    TransactionalOutput,
    transactional_config,
)
from streams.errors import DeliveryRefused, MembershipLost

pytestmark = pytest.mark.unit


class Record:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "tx"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def error(self) -> None:
        return None


def _error(code: int, *, retriable: bool = False, abort: bool = False, fatal: bool = False):  # type: ignore[no-untyped-def]
    return KafkaException(
        KafkaError(code, "fake", fatal=fatal, retriable=retriable, txn_requires_abort=abort)
    )


class FakeProducer:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.commit_errors: list[KafkaException] = []
        self.offsets_error: KafkaException | None = None

    def init_transactions(self, timeout: float = 0) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = 0
    ) -> None:
        self.calls.append(("offsets", sorted((p.partition, p.offset) for p in positions)))
        if self.offsets_error is not None:
            raise self.offsets_error

    def commit_transaction(self, timeout: float = 0) -> None:
        self.calls.append("commit")
        if self.commit_errors:
            raise self.commit_errors.pop(0)

    def abort_transaction(self, timeout: float = 0) -> None:
        self.calls.append("abort")


BATCH = [Record(0, 10), Record(0, 11), Record(3, 7)]


def _write(output: TransactionalOutput) -> None:
    output.write(BATCH, lambda: output.producer.calls.append("produce"), lambda: "meta")  # type: ignore[attr-defined]


def test_a_batch_is_one_transaction_with_its_offsets() -> None:
    producer = FakeProducer()
    output = TransactionalOutput(producer)
    output.start()
    _write(output)
    assert producer.calls == [
        "init",
        "begin",
        "produce",
        ("offsets", [(0, 12), (3, 8)]),
        "commit",
    ]


def test_a_retriable_commit_is_retried_an_abortable_one_aborts_and_replays() -> None:
    producer = FakeProducer()
    output = TransactionalOutput(producer)
    producer.commit_errors = [_error(KafkaError._TIMED_OUT, retriable=True)]
    _write(output)
    assert producer.calls[-2:] == ["commit", "commit"]

    producer.calls.clear()
    producer.commit_errors = [_error(KafkaError._MSG_TIMED_OUT, abort=True)]
    with pytest.raises(TransactionAborted):
        _write(output)
    assert producer.calls[-2:] == ["commit", "abort"]


def test_a_stale_generation_aborts_and_says_the_group_moved_on() -> None:
    producer = FakeProducer()
    output = TransactionalOutput(producer)
    producer.offsets_error = _error(KafkaError.ILLEGAL_GENERATION, abort=True)
    with pytest.raises(MembershipLost):
        _write(output)
    assert "commit" not in producer.calls and producer.calls[-1] == "abort"


def test_a_fenced_producer_stops_the_scorer() -> None:
    producer = FakeProducer()
    output = TransactionalOutput(producer)
    producer.commit_errors = [_error(KafkaError._FENCED, fatal=True)]
    with pytest.raises(DeliveryRefused, match="_FENCED"):
        _write(output)
    assert "abort" not in producer.calls


def test_the_transactional_id_is_the_static_member_and_the_ledger_mode_has_none() -> None:
    settings = ScorerSettings(instance_id="scorer-7", group_id="g", delivery_mode="transactions")
    config = transactional_config(settings)
    assert config["transactional.id"] == "g.scorer-7"
    assert config["transaction.timeout.ms"] >= settings.delivery_timeout_ms
    assert transactional_config(ScorerSettings(instance_id="scorer-7")) == {}
