"""The case store: connection, migrations, ingest, and the reads the console needs.

    CaseStore.open(url)          engine (SQLite: WAL, one writer at a time; PostgreSQL)
    migrate()                    Alembic upgrade to head (idempotent)
    ingest(cases, decisions)     upsert by case id / transaction id: a replay adds nothing
    queue(filters) / case(id)    the queue and the case page
    stats()                      queue depth, oldest open case, per-analyst throughput

The workflow's writes (claim, verdict, ...) are in :mod:`services.cases.workflow`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Row, create_engine, delete, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from services.cases.models import (
    AuditEntry,
    CardDecision,
    Case,
    CaseNote,
    LabelOutbox,
)
from streams.events import Decision, ReviewCase

Clock = Callable[[], datetime]
MIGRATIONS = Path(__file__).with_name("migrations")
OPEN_STATES = ("open", "claimed", "escalated", "needs_info")
SUMMARY_COLUMNS = (
    Case.case_id,
    Case.transaction_id,
    Case.card_id,
    Case.amount,
    Case.transaction["currency"].as_string().label("currency"),
    Case.score,
    Case.priority,
    Case.outcome,
    Case.model_version,
    Case.decided_at,
    Case.state,
    Case.claimed_by,
    Case.lease_until,
    Case.proposed_verdict,
    Case.proposed_by,
    Case.verdict,
    Case.resolved_by,
    Case.resolved_at,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_setup(engine: Engine, *, writes: bool) -> None:
    """SQLite: WAL (readers do not wait for the writer), a busy timeout, foreign keys; on
    the write engine every transaction is BEGIN IMMEDIATE: a read-then-write transaction
    takes the write lock up front, so two claims queue up instead of one failing to
    upgrade its lock. Reads use an engine of their own, whose transactions take no lock."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _: Any) -> None:
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@dataclass(frozen=True)
class IngestResult:
    created: int
    duplicates: int
    decisions: int


@dataclass(frozen=True)
class QueueFilter:
    states: tuple[str, ...] = OPEN_STATES
    outcome: str | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    model_version: str | None = None
    min_age_s: float | None = None
    limit: int = 100
    offset: int = 0


class CaseStore:
    def __init__(
        self,
        engine: Engine,
        *,
        lease_s: float = 600.0,
        approval_amount: float = 1000.0,
        sla_s: float = 3600.0,
        history_per_card: int = 20,
        clock: Clock = utcnow,
        read_engine: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine
        self.write_sessions = sessionmaker(engine, expire_on_commit=False)
        self.sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        """Read-only work (the queue, a case page, stats)."""
        self.lease = timedelta(seconds=lease_s)
        self.approval_amount = approval_amount
        self.sla = timedelta(seconds=sla_s)
        self.history_per_card = history_per_card
        self.clock = clock

    @classmethod
    def open(cls, url: str, **options: Any) -> CaseStore:
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        connect_args = options.pop("connect_args", None)
        if connect_args:
            kwargs.setdefault("connect_args", {}).update(connect_args)
        engine = create_engine(url, **kwargs)
        if engine.dialect.name != "sqlite":
            return cls(engine, **options)
        _sqlite_setup(engine, writes=True)
        reads = create_engine(url, **kwargs)
        _sqlite_setup(reads, writes=False)
        return cls(engine, read_engine=reads, **options)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest migration (nothing to do when it is there)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.write_sessions.begin() as session:
            yield session

    # -- ingest -----------------------------------------------------------------------
    def ingest(
        self, cases: Sequence[ReviewCase], decisions: Sequence[Decision] = ()
    ) -> IngestResult:
        """Store decisions (a card's history) and cases, in one transaction; a case or a
        decision already stored is left as it is, so a replayed topic creates nothing."""
        now = self.clock()
        with self.transaction() as session:
            stored = self._insert_decisions(session, decisions)
            rows = [self._case_row(session, c, now) for c in _unique(cases)]
            created: list[str] = []
            if rows:
                stmt = self._insert(Case).on_conflict_do_nothing(index_elements=["case_id"])
                created = list(session.execute(stmt.returning(Case.case_id), rows).scalars())
                session.add_all(
                    AuditEntry(case_id=cid, actor="ingester", action="created", detail={}, at=now)
                    for cid in sorted(created)
                )
        return IngestResult(len(created), len(cases) - len(created), stored)

    def _insert(self, table: type) -> Any:
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    def _insert_decisions(self, session: Session, decisions: Sequence[Decision]) -> int:
        rows: list[dict[str, Any]] = [
            {
                "transaction_id": d.transaction_id,
                "card_id": d.card_id,
                "terminal_id": d.terminal_id,
                "event_time": d.event_time,
                "amount": d.amount,
                "score": d.score,
                "decision": d.decision,
                "features": {"set": d.feature_set, "values": list(d.features)},
            }
            for d in {d.transaction_id: d for d in decisions}.values()
        ]
        if not rows:
            return 0
        stmt = self._insert(CardDecision).on_conflict_do_nothing(index_elements=["transaction_id"])
        session.execute(stmt, rows)
        for card_id in sorted({str(r["card_id"]) for r in rows}):
            self._trim_history(session, card_id)
        return len(rows)

    def _trim_history(self, session: Session, card_id: str) -> None:
        keep = (
            select(CardDecision.transaction_id)
            .where(CardDecision.card_id == card_id)
            .order_by(CardDecision.event_time.desc())
            .limit(self.history_per_card)
        )
        session.execute(
            delete(CardDecision).where(
                CardDecision.card_id == card_id,
                CardDecision.transaction_id.not_in(keep.scalar_subquery()),
            )
        )

    def _case_row(self, session: Session, case: ReviewCase, now: datetime) -> dict[str, Any]:
        tx = case.transaction
        history = self._history(session, tx.card_id, exclude=tx.transaction_id)
        reasons = [
            {
                "feature": r.feature,
                "value": r.value,
                "typical": _typical(history, r.feature),
                "contribution": r.contribution,
                "text": r.text,
            }
            for r in case.reasons
        ]
        return {
            "case_id": case.case_id,
            "transaction_id": tx.transaction_id,
            "card_id": tx.card_id,
            "terminal_id": tx.terminal_id,
            "device_id": tx.device_id,
            "customer_id": tx.customer_id,
            "amount": tx.amount,
            "score": case.score,
            "priority": case.score * tx.amount,
            "outcome": case.decision,
            "model_version": case.model_version,
            "event_time": tx.event_time,
            "decided_at": case.created_at or now,
            "ingested_at": now,
            "transaction": msgspec.to_builtins(tx),
            "reasons": {"items": reasons},
            "state": "open",
        }

    def _history(self, session: Session, card_id: str, exclude: str) -> list[CardDecision]:
        return list(
            session.scalars(
                select(CardDecision)
                .where(CardDecision.card_id == card_id, CardDecision.transaction_id != exclude)
                .order_by(CardDecision.event_time.desc())
                .limit(self.history_per_card)
            )
        )

    # -- reads ------------------------------------------------------------------------
    def queue(self, wanted: QueueFilter = QueueFilter()) -> list[dict[str, Any]]:
        """Cases by priority (score x amount), then age; an expired claim shows as open."""
        now = self.clock()
        # the summary's columns only, on a connection: a case's transaction and reasons are
        # JSON documents the queue does not show (but for the currency); loading them into
        # ORM objects was a third of the query's time at 100 rows (ADR 0011)
        with self.read_engine.connect() as connection:
            rows = connection.execute(self._queue_query(SUMMARY_COLUMNS, wanted, now)).all()
        return [self._summary(row, row.currency, now) for row in rows]

    def queue_ids(self, wanted: QueueFilter = QueueFilter()) -> list[str]:
        """The case ids of :meth:`queue`, in its order (the case page's next / previous)."""
        query = self._queue_query((Case.case_id,), wanted, self.clock())
        with self.read_engine.connect() as connection:
            return list(connection.execute(query).scalars())

    @staticmethod
    def _queue_query(columns: Sequence[Any], wanted: QueueFilter, now: datetime) -> Any:
        query = select(*columns).where(Case.state.in_(wanted.states))
        if wanted.outcome:
            query = query.where(Case.outcome == wanted.outcome)
        if wanted.min_amount is not None:
            query = query.where(Case.amount >= wanted.min_amount)
        if wanted.max_amount is not None:
            query = query.where(Case.amount <= wanted.max_amount)
        if wanted.model_version:
            query = query.where(Case.model_version == wanted.model_version)
        if wanted.min_age_s is not None:
            query = query.where(Case.decided_at <= now - timedelta(seconds=wanted.min_age_s))
        return (
            query.order_by(Case.priority.desc(), Case.decided_at, Case.case_id)
            .limit(wanted.limit)
            .offset(wanted.offset)
        )

    def summary(self, case: Case, now: datetime | None = None) -> dict[str, Any]:
        return self._summary(case, case.transaction.get("currency"), now or self.clock())

    def _summary(
        self, case: Case | Row[Any], currency: str | None, now: datetime
    ) -> dict[str, Any]:
        state, holder = effective_state(case, now)
        return {
            "case_id": case.case_id,
            "transaction_id": case.transaction_id,
            "card_id": case.card_id,
            "amount": case.amount,
            "currency": currency or "EUR",
            "score": case.score,
            "priority": case.priority,
            "outcome": case.outcome,
            "model_version": case.model_version,
            "decided_at": case.decided_at.isoformat(),
            "age_s": round((now - case.decided_at).total_seconds(), 1),
            "sla_remaining_s": round((case.decided_at + self.sla - now).total_seconds(), 1),
            "state": state,
            "claimed_by": holder,
            "lease_until": case.lease_until.isoformat() if holder and case.lease_until else None,
            "proposed_verdict": case.proposed_verdict,
            "proposed_by": case.proposed_by,
            "verdict": case.verdict,
            "resolved_by": case.resolved_by,
            "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
            "needs_approval": case.amount > self.approval_amount,
        }

    def case(self, case_id: str) -> dict[str, Any] | None:
        """A case with what its page shows: reasons, notes, the card's recent decisions,
        linked cases (same card, terminal or device) and its audit trail."""
        now = self.clock()
        with self.sessions() as session:
            found = session.get(Case, case_id)
            if found is None:
                return None
            out = self.summary(found, now)
            out["transaction"] = found.transaction
            history = self._history(session, found.card_id, exclude=found.transaction_id)
            out["reasons"] = _with_typical(found.reasons.get("items", []), history)
            out["notes"] = [
                {"author": n.author, "text": n.text, "created_at": n.created_at.isoformat()}
                for n in session.scalars(
                    select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.note_id)
                )
            ]
            out["card_history"] = [
                {
                    "transaction_id": d.transaction_id,
                    "event_time": d.event_time.isoformat(),
                    "amount": d.amount,
                    "score": d.score,
                    "decision": d.decision,
                    "terminal_id": d.terminal_id,
                }
                for d in history
            ]
            links = [Case.card_id == found.card_id, Case.terminal_id == found.terminal_id]
            if found.device_id:
                links.append(Case.device_id == found.device_id)
            linked = session.scalars(
                select(Case)
                .where(or_(*links), Case.case_id != case_id)
                .order_by(Case.decided_at.desc())
                .limit(20)
            )
            out["linked_cases"] = [
                {**self.summary(c, now), "link": _link(found, c)} for c in linked
            ]
            out["audit"] = [
                {"actor": a.actor, "action": a.action, "detail": a.detail, "at": a.at.isoformat()}
                for a in session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.case_id == case_id)
                    .order_by(AuditEntry.entry_id)
                )
            ]
            return out

    def stats(self, window_s: float = 86_400.0) -> dict[str, Any]:
        """Queue depth by state, the oldest unresolved case's age, verdicts per analyst."""
        now = self.clock()
        with self.sessions() as session:
            depth = {state: 0 for state in (*OPEN_STATES, "resolved")}
            rows = session.execute(select(Case.state, func.count()).group_by(Case.state)).all()
            for state, count in rows:
                depth[state] = int(count)
            expired = session.scalar(
                select(func.count()).where(Case.state == "claimed", Case.lease_until < now)
            )
            depth["claimed"] -= int(expired or 0)
            depth["open"] += int(expired or 0)
            oldest = session.scalar(
                select(func.min(Case.decided_at)).where(Case.state.in_(OPEN_STATES))
            )
            since = now - timedelta(seconds=window_s)
            per_analyst = session.execute(
                select(Case.resolved_by, Case.verdict, func.count())
                .where(Case.state == "resolved", Case.resolved_at >= since)
                .group_by(Case.resolved_by, Case.verdict)
            ).all()
            unsent = session.scalar(
                select(func.count()).select_from(LabelOutbox).where(LabelOutbox.sent_at.is_(None))
            )
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        throughput: dict[str, dict[str, int]] = {}
        for analyst, verdict, count in per_analyst:
            throughput.setdefault(str(analyst), {})[str(verdict)] = int(count)
        return {
            "depth": depth,
            "oldest_open_age_s": (now - oldest).total_seconds() if oldest else 0.0,
            "sla_s": self.sla.total_seconds(),
            "throughput": throughput,
            "window_s": window_s,
            "labels_unsent": int(unsent or 0),
        }


def effective_state(case: Case | Row[Any], now: datetime) -> tuple[str, str | None]:
    """(state, holder): a claim whose lease ran out is an open case with no holder."""
    if case.state == "claimed":
        if case.lease_until is not None and case.lease_until >= now:
            return "claimed", case.claimed_by
        return "open", None
    return case.state, None


def _typical(history: Sequence[CardDecision], feature: str) -> float | None:
    """The card's median of ``feature`` over its recent decisions (None: no history)."""
    if feature not in FEATURE_NAMES:
        return None
    index = FEATURE_NAMES.index(feature)
    values = [
        float(d.features["values"][index])
        for d in history
        if d.features.get("set") == FEATURE_SET_ID and len(d.features["values"]) > index
    ]
    return float(statistics.median(values)) if values else None


def _with_typical(
    reasons: Sequence[dict[str, Any]], history: Sequence[CardDecision]
) -> list[dict[str, Any]]:
    """Reasons with a typical value for those stored without one: the review and scored
    topics are read independently, so a case can be stored before its card's decisions."""
    return [
        r if r.get("typical") is not None else {**r, "typical": _typical(history, r["feature"])}
        for r in reasons
    ]


def _link(case: Case, other: Case) -> str:
    if other.card_id == case.card_id:
        return "card"
    if other.terminal_id == case.terminal_id:
        return "terminal"
    return "device"


def _unique(cases: Sequence[ReviewCase]) -> list[ReviewCase]:
    return list({c.case_id: c for c in cases}.values())
