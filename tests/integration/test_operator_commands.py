"""The operator's commands on the real broker: produce, decisions tail, dlq inspect | replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from services.cli import app
from streams.dlq import MAX_ORIGINAL_BYTES, dead_letter, encode_dead_letter
from streams.events import Decision
from streams.kafka import producer_config
from streams.serde import encode
from streams.topics import Topics
from tests.integration.scorer_helpers import read_all

pytestmark = pytest.mark.integration
runner = CliRunner()


def fraudctl(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout


@pytest.fixture()
def env(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> dict[str, str]:
    return {
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
    }


def transaction(tid: str, card: str = "card-1", **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "transaction_id": tid,
        "event_time": datetime.now(UTC).isoformat(),
        "card_id": card,
        "customer_id": "cust-1",
        "terminal_id": "term-1",
        "amount": 12.5,
    }
    record.update(changes)
    return record


def test_produce_sends_the_good_records_keyed_by_card_and_names_the_rejects(
    env: dict[str, str], kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    lines = [
        json.dumps(transaction("tx-1")),
        json.dumps(transaction("tx-2", amount=0)),
        json.dumps(transaction("tx-3", card="card-2")),
        json.dumps(transaction("tx-4", event_time="2020-01-01T00:00:00Z")),
    ]
    path = tmp_path / "tx.jsonl"
    path.write_text("\n".join(lines) + "\n")
    checked = json.loads(
        fraudctl(env, "produce", "--file", str(path), "--dry-run", "--json", code=1)
    )
    assert checked["sent"] == 2 and checked["dry_run"]
    assert read_all(kafka_bootstrap, topics.transactions, idle_s=1.0) == []

    report = json.loads(fraudctl(env, "produce", "--file", str(path), "--json", code=1))
    assert [(r["line"], r["reason"]) for r in report["rejects"]] == [
        (2, "out_of_range"),
        (4, "event_time_out_of_range"),
    ]
    sent = read_all(kafka_bootstrap, topics.transactions, idle_s=3.0)
    assert sorted((m.key(), m.value()) for m in sent) == [
        (b"card-1", lines[0].encode()),
        (b"card-2", lines[2].encode()),
    ]


def decision(tid: str, card: str, outcome: str) -> Decision:
    return Decision(
        transaction_id=tid,
        card_id=card,
        terminal_id="term-1",
        event_time=datetime.now(UTC),
        amount=10.0,
        score=0.9 if outcome != "approve" else 0.01,
        decision=outcome,  # type: ignore[arg-type]
        model_version="v0001",
        feature_set="fs",
        features=[1.0, 2.0],
    )


def test_decisions_tail_filters_by_outcome_and_card(
    env: dict[str, str], kafka_bootstrap: str, topics: Topics
) -> None:
    producer = Producer(producer_config(kafka_bootstrap, client_id="test"))
    written = [
        decision("tx-1", "card-1", "approve"),
        decision("tx-2", "card-1", "review"),
        decision("tx-3", "card-2", "review"),
        decision("tx-4", "card-2", "decline"),
    ]
    for item in written:
        producer.produce(topics.scored, encode(item), key=item.card_id)
    producer.produce(topics.scored, b"not a decision", key=b"x")
    assert producer.flush(30) == 0
    every = ["decisions", "tail", "--from-beginning", "--no-follow", "--json"]

    def ids(*filters: str) -> list[str]:
        out = fraudctl(env, *every, *filters)
        return sorted(json.loads(line)["transaction_id"] for line in out.splitlines())

    assert ids() == ["tx-1", "tx-2", "tx-3", "tx-4"]
    assert ids("--outcome", "review") == ["tx-2", "tx-3"]
    assert ids("--outcome", "review", "--card", "card-2") == ["tx-3"]
    assert ids("--count", "1") in (["tx-1"], ["tx-2"], ["tx-3"], ["tx-4"])
    text = fraudctl(env, "decisions", "tail", "--from-beginning", "--no-follow", "--card", "card-1")
    assert "review" in text and "tx-2" in text and "tx-3" not in text


def test_dlq_replays_only_faithful_originals_the_decoder_now_accepts(
    env: dict[str, str], kafka_bootstrap: str, topics: Topics
) -> None:
    clean = json.dumps(transaction("tx-ok")).encode()
    with_pan = json.dumps(transaction("tx-pan", terminal_id="4111111111111111")).encode()
    huge = json.dumps(transaction("tx-big", note="x" * MAX_ORIGINAL_BYTES)).encode()
    still_bad = json.dumps(transaction("tx-bad", amount=-1)).encode()
    letters = [
        dead_letter(
            source_topic=topics.transactions,
            partition=0,
            offset=i,
            reason=reason,
            message="refused",
            original=original,
            key=b"card-1",
        )
        for i, (reason, original) in enumerate(
            [
                ("processing_error", clean),
                ("pan_not_allowed", with_pan),
                ("too_large", huge),
                ("out_of_range", still_bad),
            ]
        )
    ]
    assert [(x.redacted, x.truncated) for x in letters] == [
        (False, False),
        (True, False),
        (False, True),
        (False, False),
    ]
    producer = Producer(producer_config(kafka_bootstrap, client_id="test"))
    for letter in letters:
        value, key = encode_dead_letter(letter)
        producer.produce(topics.dlq, value, key=key)
    assert producer.flush(30) == 0

    listed = json.loads(fraudctl(env, "dlq", "inspect", "--json"))
    assert [item["reason"] for item in listed] == [
        "processing_error",
        "pan_not_allowed",
        "too_large",
        "out_of_range",
    ]
    assert listed[0]["original"] == clean.decode()
    assert "4111111111111111" not in json.dumps(listed)
    assert json.loads(fraudctl(env, "dlq", "inspect", "--reason", "too_large", "--json"))[0][
        "truncated"
    ]

    dry = json.loads(fraudctl(env, "dlq", "replay", "--dry-run", "--json"))
    assert dry["sent"] == 1
    assert read_all(kafka_bootstrap, topics.transactions, idle_s=1.0) == []
    report = json.loads(fraudctl(env, "dlq", "replay", "--json"))
    assert report["sent"] == 1 and report["next_offset"] == 4
    assert sorted(report["skipped"]) == [
        "redacted (it held a card number): the original bytes are not kept",
        "still refused: out_of_range",
        "truncated (over the size limit): only the head of the original is kept",
    ]
    replayed = read_all(kafka_bootstrap, topics.transactions, idle_s=3.0)
    assert [(m.key(), m.value()) for m in replayed] == [(b"card-1", clean)]
    again = json.loads(fraudctl(env, "dlq", "replay", "--from-offset", "4", "--json"))
    assert again["sent"] == 0
