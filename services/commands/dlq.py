"""``fraudctl dlq inspect | replay``: what was refused and why; send fixed records back.

A dead letter keeps its original bytes only when they held no card number; otherwise it
keeps a redacted copy (``redacted``), and a record past the intake's size limit keeps only
its head (``truncated``). Neither can be replayed faithfully - the bytes sent back would
not be the ones refused - so ``replay`` skips them and says so; ``original_sha256``
identifies the refused bytes for the producer to resend.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from services.commands.options import JsonOption, fail
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.events import DeadLetter
from streams.kafka import producer_config
from streams.serde import Decoder, Rejection, label_decoder, transaction_decoder
from streams.topic_reader import ReadPlan, read_topic

app = typer.Typer(help="Dead letters: inspect refused records, replay fixed ones.")
console = Console(stderr=True)
_letter_decoder = msgspec.json.Decoder(DeadLetter)


@dataclass(frozen=True)
class Letter:
    dlq_offset: int
    letter: DeadLetter


def read_letters(settings: CommonSettings, reason: str | None, from_offset: int) -> list[Letter]:
    """Every dead letter on the DLQ now (oldest first), filtered; unreadable ones skipped."""
    out = []
    topic = settings.topics().dlq
    for message in read_topic(settings.kafka(), topic, ReadPlan(), client_id="fraudctl-dlq"):
        offset = int(message.offset() or 0)
        if offset < from_offset:
            continue
        try:
            letter = _letter_decoder.decode(message.value() or b"")
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if reason is None or letter.reason == reason:
            out.append(Letter(offset, letter))
    return out


def letter_json(item: Letter) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(item.letter)
    original = item.letter.original
    try:
        body["original"] = original.decode("utf-8")
    except UnicodeDecodeError:
        body["original"] = None
        body["original_base64"] = base64.b64encode(original).decode()
    if item.letter.key is not None:
        body["key"] = item.letter.key.decode("utf-8", errors="replace")
    return {"dlq_offset": item.dlq_offset, **body}


ReasonOption: Any = typer.Option(None, "--reason", help="only this reason (e.g. wrong_type)")
FromOffsetOption: Any = typer.Option(
    0, "--from-offset", min=0, help="start at this offset of the DLQ (partition 0)"
)


@app.command("inspect")
def inspect(
    reason: str | None = ReasonOption,
    from_offset: int = FromOffsetOption,
    count: int = typer.Option(20, "--count", min=1, help="how many of the latest to list"),
    as_json: bool = JsonOption,
) -> None:
    """Dead letters by reason, then the latest ones: where from, why, replayable or not."""
    settings = CommonSettings()
    try:
        letters = read_letters(settings, reason, from_offset)
    except FraudError as exc:
        raise fail(console, str(exc)) from None
    latest = letters[-count:]
    if as_json:
        print(json.dumps([letter_json(item) for item in latest], indent=2))
        return
    by_reason = Counter(item.letter.reason for item in letters)
    summary = Table(title=f"{settings.topics().dlq}: {len(letters)} dead letters")
    summary.add_column("reason")
    summary.add_column("count", justify="right")
    for name, number in by_reason.most_common():
        summary.add_row(name, str(number))
    Console().print(summary)
    table = Table(title=f"latest {len(latest)}")
    for column in ("dlq offset", "source", "reason", "message", "replayable"):
        table.add_column(column)
    for item in latest:
        letter = item.letter
        table.add_row(
            str(item.dlq_offset),
            f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
            letter.reason,
            letter.message[:80],
            "yes" if replay_blocker(letter) is None else "no",
        )
    Console().print(table)


def replay_blocker(letter: DeadLetter) -> str | None:
    """Why ``letter`` cannot be sent back as it was refused, or None."""
    if letter.redacted:
        return "redacted (it held a card number): the original bytes are not kept"
    if letter.truncated:
        return "truncated (over the size limit): only the head of the original is kept"
    if not letter.original:
        return "no original kept"
    return None


@dataclass
class ReplayReport:
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    next_offset: int = 0

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


@app.command("replay")
def replay(
    reason: str | None = ReasonOption,
    from_offset: int = FromOffsetOption,
    check: bool = typer.Option(
        True,
        "--check/--no-check",
        help="send only records the current decoder and settings accept (else all)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would be sent, send nothing"),
    as_json: bool = JsonOption,
) -> None:
    """Send dead letters' originals back to the topic they came from, keyed as they were.

    Replays are safe to repeat: the scorer decides a transaction_id once and the feedback
    processor applies a label once. Redacted or truncated letters are never sent.
    """
    from streams.producer import AckedProducer

    settings = CommonSettings()
    topics = settings.topics()
    bounds = settings.event_time_bounds()
    decoders: dict[str, Decoder[Any]] = {
        topics.transactions: transaction_decoder.with_bounds(bounds),
        topics.labels: label_decoder,
    }
    report = ReplayReport(next_offset=from_offset)
    try:
        letters = read_letters(settings, reason, from_offset)
        producer = None
        if not dry_run and letters:
            producer = AckedProducer(producer_config(settings.kafka(), client_id="fraudctl-dlq"))
        for item in letters:
            letter = item.letter
            report.next_offset = item.dlq_offset + 1
            blocker = replay_blocker(letter)
            decoder = decoders.get(letter.source_topic)
            if blocker is not None:
                report.skip(blocker)
            elif decoder is None:
                report.skip(f"source topic {letter.source_topic} is not replayed")
            elif check and isinstance(rejected := decoder.decode(letter.original), Rejection):
                report.skip(f"still refused: {rejected.reason}")
            else:
                if producer is not None:
                    producer.produce(letter.source_topic, letter.original, key=letter.key)
                report.sent += 1
        if producer is not None:
            producer.wait_acked(timeout_s=60.0)
    except FraudError as exc:
        raise fail(console, str(exc)) from None
    if as_json:
        print(json.dumps({"dry_run": dry_run, **vars(report)}, indent=2))
        return
    verb = "would send" if dry_run else "sent"
    console.print(f"{verb} {report.sent} record(s) back to their topics", highlight=False)
    for why, number in sorted(report.skipped.items()):
        console.print(f"skipped {number}: {why}", highlight=False, markup=False)
    console.print(f"next replay: --from-offset {report.next_offset}", highlight=False)
