"""The case store: cases, the cards' recent decisions, notes, audit, label outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("transaction_id", sa.String(64), nullable=False, index=True),
        sa.Column("card_id", sa.String(64), nullable=False, index=True),
        sa.Column("terminal_id", sa.String(64), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=True, index=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("event_time", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
        sa.Column("ingested_at", _TS, nullable=False),
        sa.Column("transaction", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("proposed_verdict", sa.String(16), nullable=True),
        sa.Column("proposed_by", sa.String(128), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
    )
    op.create_index("ix_cases_state_priority", "cases", ["state", "priority"])
    op.create_table(
        "card_decisions",
        sa.Column("transaction_id", sa.String(64), primary_key=True),
        sa.Column("card_id", sa.String(64), nullable=False, index=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("event_time", _TS, nullable=False, index=True),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
    )
    op.create_table(
        "case_notes",
        sa.Column("note_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "case_id",
            sa.String(64),
            sa.ForeignKey("cases.case_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "case_audit",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", _TS, nullable=False, index=True),
    )
    op.create_table(
        "label_outbox",
        sa.Column("outbox_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False, unique=True),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True, index=True),
    )


def downgrade() -> None:
    for table in ("label_outbox", "case_audit", "case_notes", "card_decisions", "cases"):
        op.drop_table(table)
