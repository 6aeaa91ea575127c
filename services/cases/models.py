"""The case store's tables (SQLAlchemy 2 declarative). The schema is created and changed
only by the Alembic migrations in ``migrations/``; these classes must match them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import JSON, DateTime, Dialect, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

CaseState = Literal["open", "claimed", "resolved", "escalated", "needs_info"]
CASE_STATES: tuple[CaseState, ...] = get_args(CaseState)
WORKABLE: tuple[CaseState, ...] = ("open", "escalated", "needs_info")
"""States a case may be claimed from (besides an expired claim)."""


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: stored as UTC, read
    back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the case store keeps aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class Case(Base):
    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(64), index=True)
    card_id: Mapped[str] = mapped_column(String(64), index=True)
    terminal_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    priority: Mapped[float] = mapped_column(Float)
    """score x amount: the expected loss the case stands for."""
    outcome: Mapped[str] = mapped_column(String(16))
    """The model's decision (review or decline)."""
    model_version: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column()
    ingested_at: Mapped[datetime] = mapped_column()
    transaction: Mapped[dict[str, Any]] = mapped_column()
    reasons: Mapped[dict[str, Any]] = mapped_column()
    """{"items": [{feature, value, typical, contribution, text}, ...]}"""
    state: Mapped[str] = mapped_column(String(16), default="open")
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column()
    proposed_verdict: Mapped[str | None] = mapped_column(String(16))
    proposed_by: Mapped[str | None] = mapped_column(String(128))
    verdict: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_cases_state_priority", "state", "priority"),)


class CardDecision(Base):
    """A card's recent decisions, kept as they arrive (the case page's history)."""

    __tablename__ = "card_decisions"

    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    card_id: Mapped[str] = mapped_column(String(64), index=True)
    terminal_id: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[datetime] = mapped_column(index=True)
    amount: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    features: Mapped[dict[str, Any]] = mapped_column()
    """{"names": [...], "values": [...]}: the served feature vector."""


class CaseNote(Base):
    __tablename__ = "case_notes"

    note_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    """Redacted of card numbers before it is stored."""
    created_at: Mapped[datetime] = mapped_column()


class AuditEntry(Base):
    """Every action on a case, appended, never changed (who, what, when)."""

    __tablename__ = "case_audit"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column()
    at: Mapped[datetime] = mapped_column(index=True)


class LabelOutbox(Base):
    """One label per resolved case, written in the verdict's transaction; the relay sends
    it to ``fraud.labels`` and sets ``sent_at`` after the broker's acknowledgement."""

    __tablename__ = "label_outbox"

    outbox_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)
    transaction_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
