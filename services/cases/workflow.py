"""The case workflow: every action one transaction on the case's locked row.

    open ─claim─► claimed ─verdict fraud|legit─► resolved   (one Label into the outbox)
      ▲              │ ─escalate─► escalated ─claim─► claimed ...
      └─release──────┤ ─needs_info─► needs_info ─claim─► claimed ...
      └─lease expired┘

A claim is a lease (renewed by claiming again); an expired lease lets anyone claim the
case. A fraud verdict above the approval amount first becomes a proposal (the case goes to
``escalated``); a second analyst's fraud verdict resolves it. A retried verdict finds the
case resolved by the same analyst with the same verdict and answers as the first did: the
outbox's unique case id keeps it to one label. Every action appends to the audit table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cases.errors import CaseConflict, CaseNotFound
from services.cases.metrics import VERDICT_LATENCY, VERDICTS
from services.cases.models import WORKABLE, AuditEntry, Case, CaseNote, LabelOutbox
from services.cases.store import CaseStore, effective_state
from streams.events import Label
from streams.pan import redact_text
from streams.serde import encode

Verdict = Literal["fraud", "legit", "escalate", "needs_info"]
LabelSource = Literal["analyst", "oracle"]
VERDICTS_ALLOWED: tuple[Verdict, ...] = get_args(Verdict)
NOTE_MAX = 2000


@dataclass(frozen=True)
class ActionResult:
    case_id: str
    state: str
    action: str
    replayed: bool = False
    """True when the same action had already been done (a retried request)."""
    label: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "state": self.state,
            "action": self.action,
            "replayed": self.replayed,
            "label": self.label,
        }


class Workflow:
    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def claim(self, case_id: str, analyst: str) -> ActionResult:
        """Take (or renew) the lease on a case; refused while another analyst holds it."""
        with self.store.transaction() as session:
            case, now = self._locked(session, case_id)
            state, holder = effective_state(case, now)
            renewal = holder == analyst
            if state == "resolved":
                raise CaseConflict(case_id, "resolved already")
            if holder is not None and not renewal:
                raise CaseConflict(case_id, f"claimed by {holder}", holder)
            previous = case.state
            case.state, case.claimed_by = "claimed", analyst
            case.lease_until = now + self.store.lease
            if not renewal:
                _audit(session, case_id, analyst, "claimed", {"from": previous}, now)
            return ActionResult(case_id, "claimed", "claim", replayed=renewal)

    def release(self, case_id: str, analyst: str) -> ActionResult:
        """Give a claimed case back to the queue (only its holder may)."""
        with self.store.transaction() as session:
            case, now = self._locked(session, case_id)
            state, holder = effective_state(case, now)
            if holder != analyst:
                if state in WORKABLE or state == "open":
                    return ActionResult(case_id, state, "release", replayed=True)
                raise CaseConflict(case_id, f"not held by {analyst}", holder)
            case.state, case.claimed_by, case.lease_until = "open", None, None
            _audit(session, case_id, analyst, "released", {}, now)
            return ActionResult(case_id, "open", "release")

    def note(self, case_id: str, analyst: str, text: str) -> ActionResult:
        """Add a note (redacted of card numbers before it is stored)."""
        clean = redact_text(text.strip())[:NOTE_MAX]
        if not clean:
            raise CaseConflict(case_id, "empty note")
        with self.store.transaction() as session:
            case, now = self._locked(session, case_id)
            session.add(CaseNote(case_id=case_id, author=analyst, text=clean, created_at=now))
            _audit(session, case_id, analyst, "note", {"chars": len(clean)}, now)
            return ActionResult(case_id, effective_state(case, now)[0], "note")

    def verdict(
        self,
        case_id: str,
        analyst: str,
        verdict: Verdict,
        note: str | None = None,
        source: LabelSource = "analyst",
    ) -> ActionResult:
        """Resolve (fraud / legit), escalate or ask for information. The analyst must hold
        the case or be able to claim it now; a verdict resolves it and writes its label to
        the outbox in the same transaction."""
        if verdict not in VERDICTS_ALLOWED:
            raise CaseConflict(case_id, f"unknown verdict {verdict!r}")
        clean = redact_text(note.strip())[:NOTE_MAX] if note and note.strip() else None
        with self.store.transaction() as session:
            case, now = self._locked(session, case_id)
            state, holder = effective_state(case, now)
            if state == "resolved":
                if case.verdict == verdict and analyst == case.resolved_by:
                    return ActionResult(
                        case_id, "resolved", verdict, True, _label_of(session, case)
                    )
                raise CaseConflict(case_id, f"resolved already ({case.verdict})")
            if holder is not None and holder != analyst:
                raise CaseConflict(case_id, f"claimed by {holder}", holder)
            if clean:
                session.add(CaseNote(case_id=case_id, author=analyst, text=clean, created_at=now))
            if verdict in ("escalate", "needs_info"):
                target = "escalated" if verdict == "escalate" else "needs_info"
                replay = case.state == target and case.claimed_by is None
                case.state, case.claimed_by, case.lease_until = target, None, None
                if not replay:
                    _audit(session, case_id, analyst, verdict, {}, now)
                return ActionResult(case_id, target, verdict, replayed=replay)
            if verdict == "fraud" and case.amount > self.store.approval_amount:
                if case.proposed_verdict == "fraud" and case.proposed_by == analyst:
                    return ActionResult(case_id, case.state, "proposed", replayed=True)
                if case.proposed_verdict != "fraud":
                    case.proposed_verdict, case.proposed_by = "fraud", analyst
                    case.state, case.claimed_by, case.lease_until = "escalated", None, None
                    _audit(session, case_id, analyst, "proposed", {"verdict": "fraud"}, now)
                    return ActionResult(case_id, "escalated", "proposed")
            resolved: Literal["fraud", "legit"] = "fraud" if verdict == "fraud" else "legit"
            label = self._resolve(session, case, analyst, resolved, clean, now, source)
            return ActionResult(case_id, "resolved", verdict, label=label)

    # -- internals --------------------------------------------------------------------
    def _locked(self, session: Session, case_id: str) -> tuple[Case, datetime]:
        """The case's row, locked for this transaction (PostgreSQL: FOR UPDATE; SQLite:
        the transaction holds the database's write lock from its start)."""
        case = session.scalars(
            select(Case).where(Case.case_id == case_id).with_for_update()
        ).one_or_none()
        if case is None:
            raise CaseNotFound(case_id)
        return case, self.store.clock()

    def _resolve(
        self,
        session: Session,
        case: Case,
        analyst: str,
        verdict: Literal["fraud", "legit"],
        note: str | None,
        now: datetime,
        source: LabelSource = "analyst",
    ) -> dict[str, Any]:
        approval = case.proposed_by if verdict == "fraud" and case.proposed_by else None
        label = Label(
            transaction_id=case.transaction_id,
            label=verdict,
            analyst=analyst,
            labelled_at=now,
            source=source,
            note=_label_note(note, approval, analyst),
        )
        case.state, case.verdict = "resolved", verdict
        case.resolved_by, case.resolved_at = analyst, now
        case.claimed_by, case.lease_until = None, None
        payload = encode(label).decode()
        session.add(
            LabelOutbox(
                case_id=case.case_id,
                transaction_id=case.transaction_id,
                payload=payload,
                created_at=now,
            )
        )
        detail = {"verdict": verdict, **({"proposed_by": approval} if approval else {})}
        _audit(session, case.case_id, analyst, "verdict", detail, now)
        VERDICTS.labels(analyst=analyst, verdict=verdict).inc()
        VERDICT_LATENCY.observe(max(0.0, (now - case.decided_at).total_seconds()))
        return {"transaction_id": label.transaction_id, "label": verdict, "analyst": analyst}


def _label_note(note: str | None, proposed_by: str | None, approver: str) -> str | None:
    if proposed_by is None:
        return note
    approval = f"proposed by {proposed_by}, approved by {approver}"
    return f"{note} ({approval})"[:NOTE_MAX] if note else approval


def _label_of(session: Session, case: Case) -> dict[str, Any] | None:
    row = session.scalars(select(LabelOutbox).where(LabelOutbox.case_id == case.case_id)).first()
    if row is None:
        return None
    return {
        "transaction_id": row.transaction_id,
        "label": case.verdict,
        "analyst": case.resolved_by,
    }


def _audit(
    session: Session, case_id: str, actor: str, action: str, detail: dict[str, Any], at: datetime
) -> None:
    session.add(AuditEntry(case_id=case_id, actor=actor, action=action, detail=detail, at=at))
