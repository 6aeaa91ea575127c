"""The case store's part of an erasure: the subject's cases (with their notes and unsent
or sent labels) and the cards' recent decisions. The audit trail stays: its rows name a
case id, an analyst and an action, nothing of the customer."""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from services.cases.models import CardDecision, Case, CaseNote, LabelOutbox
from services.cases.store import CaseStore
from services.erasure.parts import Subject


class CaseStorePart:
    name = "case_store"

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def erase(self, subject: Subject) -> dict[str, int]:
        cards = sorted(subject.card_ids)
        with self.store.transaction() as session:
            found = session.execute(
                select(Case.case_id, Case.transaction_id, Case.card_id).where(
                    or_(Case.card_id.in_(cards), Case.customer_id == subject.customer_id)
                )
            ).all()
            case_ids = [row.case_id for row in found]
            subject.card_ids |= {row.card_id for row in found}
            subject.transaction_ids |= {row.transaction_id for row in found}
            decisions = list(
                session.scalars(
                    select(CardDecision.transaction_id).where(
                        CardDecision.card_id.in_(sorted(subject.card_ids))
                    )
                )
            )
            subject.transaction_ids |= set(decisions)
            notes = session.execute(delete(CaseNote).where(CaseNote.case_id.in_(case_ids)))
            labels = session.execute(delete(LabelOutbox).where(LabelOutbox.case_id.in_(case_ids)))
            session.execute(delete(Case).where(Case.case_id.in_(case_ids)))
            session.execute(
                delete(CardDecision).where(CardDecision.card_id.in_(sorted(subject.card_ids)))
            )
        return {
            "cases": len(case_ids),
            "notes": int(getattr(notes, "rowcount", 0) or 0),
            "labels": int(getattr(labels, "rowcount", 0) or 0),
            "card_decisions": len(decisions),
        }
