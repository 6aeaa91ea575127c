"""The recovery read outside the assignment callback: an unreadable topic is read again,
a partial read is said (counted, logged) and read again; only a whole one is used."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

import services.scorer.recovery as recovery
from services.scorer import metrics
from services.scorer.recovery import Recovered, recover_whole
from streams.topics import Topics

pytestmark = pytest.mark.unit


def test_errors_and_partial_reads_are_read_again_until_whole(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[Recovered | KafkaException] = [
        KafkaException(KafkaError(KafkaError._TRANSPORT, "list_topics failed")),
        Recovered(decided={"t1"}, complete=False, unread=["scored[2]"]),
        Recovered(decided={"t1", "t2"}, complete=True),
    ]

    def fake_recover(*args: object, **kwargs: object) -> Recovered:
        answer = answers.pop(0)
        if isinstance(answer, KafkaException):
            raise answer
        return answer

    monkeypatch.setattr(recovery, "recover", fake_recover)
    waits: list[float] = []
    before = metrics.RECOVERY_INCOMPLETE._value.get()
    found = recover_whole("broker:9092", Topics(), 5_000, lambda: None, waits.append)
    assert found.decided == {"t1", "t2"} and found.complete
    assert waits == [1.0, 1.0] and answers == []
    assert metrics.RECOVERY_INCOMPLETE._value.get() == before + 1
    assert "scored[2] not read to the end" in caplog.text
