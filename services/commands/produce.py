"""``fraudctl produce``: send a file of transactions to ``transactions``, checked first.

Every record is decoded by the scorer's own decoder (the contract, the card-number check,
the event-time bounds of the settings) before it is sent: a record the scorer would
dead-letter is reported with its line number and reason instead, and not sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from services.commands.options import JsonOption, fail
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.events import Transaction
from streams.kafka import ensure_topics, producer_config, wait_for_broker
from streams.serde import Rejection, transaction_decoder
from streams.tables import parse_column_overrides
from streams.transaction_file import FileRecord, read_records

console = Console(stderr=True)
SHOWN_REJECTS = 20
_WINDOW_EVERY = 1000  # records per reading of the clock for the event-time bounds


@dataclass
class ProduceReport:
    file: str
    topic: str
    dry_run: bool
    records: int = 0
    sent: int = 0
    rejected: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    rejects: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, record: FileRecord, rejection: Rejection) -> None:
        self.rejected += 1
        self.by_reason[rejection.reason] = self.by_reason.get(rejection.reason, 0) + 1
        self.rejects.append(
            {"line": record.line, "reason": rejection.reason, "message": rejection.message}
        )


def produce(
    file: Path = typer.Option(..., "--file", help="transactions: .jsonl, .csv or .parquet"),
    col: list[str] = typer.Option(
        [], "--col", help="a table's column for a role: ROLE=NAME (as `fraudctl train`)"
    ),
    rate: float = typer.Option(
        0.0, "--rate", min=0.0, help="transactions per second (0 = as fast as the broker takes)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="check every record, send nothing"),
    as_json: bool = JsonOption,
) -> None:
    """Check every record against the contract and send the good ones, keyed by card_id.

    Exit code 0 when every record was sent (or would be, with --dry-run), 1 when some were
    rejected (the others are sent), 2 when nothing could be read or sent.
    """
    settings = CommonSettings()
    topic = settings.topics().transactions
    report = ProduceReport(file=str(file), topic=topic, dry_run=dry_run)
    try:
        records = read_records(file, parse_column_overrides(col))
        _run(settings, records, report, rate=rate, dry_run=dry_run)
    except FraudError as exc:
        raise fail(console, str(exc)) from None
    _print(report, as_json)
    if report.rejected:
        raise typer.Exit(1)


def _run(
    settings: CommonSettings,
    records: Iterable[FileRecord],
    report: ProduceReport,
    *,
    rate: float,
    dry_run: bool,
) -> None:
    from streams.producer import AckedProducer

    decoder = transaction_decoder.with_bounds(settings.event_time_bounds())
    producer = None
    if not dry_run:
        wait_for_broker(settings.kafka(), timeout_s=10.0)
        ensure_topics(settings.kafka(), settings.topics(), only=["transactions"])
        producer = AckedProducer(producer_config(settings.kafka(), client_id="fraudctl-produce"))
    started = time.monotonic()
    window = decoder.window()
    for record in records:
        report.records += 1
        if report.records % _WINDOW_EVERY == 0:
            window = decoder.window()
        result = decoder.decode(record.payload, window)
        if isinstance(result, Rejection):
            report.reject(record, result)
            continue
        if producer is not None:
            if rate > 0:
                _pace(started, report.sent, rate)
            producer.produce(report.topic, record.payload, key=_key(result))
            if report.sent % 1000 == 0:
                producer.poll(0)
        report.sent += 1
    if producer is not None:
        producer.wait_acked(timeout_s=60.0)
    report.seconds = round(time.monotonic() - started, 3)


def _key(transaction: Transaction) -> bytes:
    return transaction.card_id.encode()


def _pace(started: float, sent: int, rate: float) -> None:
    ahead = started + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)


def _print(report: ProduceReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(vars(report), indent=2))
        return
    for reject in report.rejects[:SHOWN_REJECTS]:
        console.print(
            f"line {reject['line']}: {reject['reason']}: {reject['message']}",
            markup=False,
            highlight=False,
        )
    if report.rejected > SHOWN_REJECTS:
        console.print(f"... and {report.rejected - SHOWN_REJECTS} more rejected (see --json)")
    if "event_time_out_of_range" in report.by_reason:
        console.print(
            "replaying history? the scorer refuses transactions older than "
            "FRAUD_EVENT_TIME_MAX_AGE_S (30 days); set it to 0 for this producer and the "
            "scorers while the replay runs",
            highlight=False,
        )
    verb = "would send" if report.dry_run else "sent"
    rate = report.sent / report.seconds if report.seconds > 0 else 0.0
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.by_reason.items()))
    console.print(
        f"{report.records:,} records: {verb} {report.sent:,} to {report.topic}, "
        f"rejected {report.rejected:,}"
        + (f" ({reasons})" if reasons else "")
        + ("" if report.dry_run else f" in {report.seconds:.1f} s ({rate:,.0f}/s)"),
        highlight=False,
    )
