"""The analyst's terminal: one case at a time, a verdict per line.

Keys: ``f`` fraud, ``l`` legit, ``s`` skip, ``q`` quit; anything after the key is the note
(``f card used abroad``). Input is any line iterator (stdin, or a list in tests), output a
rich console, so the loop is testable without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TextIO

from rich.console import Console
from rich.table import Table

from services.review.history import CardHistory
from services.review.session import PendingCase, Verdict


class CaseSource(Protocol):
    """What the loop needs of a :class:`ReviewSession` (a fake in unit tests)."""

    def next_cases(self, timeout_s: float = 1.0) -> list[PendingCase]: ...

    def verdict(
        self, pending: PendingCase, verdict: Verdict, note: str | None = None
    ) -> object: ...


KEYS: dict[str, Verdict] = {"f": "fraud", "l": "legit", "s": "skip"}


def parse_answer(line: str) -> tuple[Verdict | None, str | None]:
    """``(verdict, note)``; ``(None, None)`` for quit; raises ``ValueError`` on bad input."""
    text = line.strip()
    key, _, note = text.partition(" ")
    key = key.lower()
    if key in ("q", "quit"):
        return None, None
    if key not in KEYS:
        raise ValueError(f"unknown key {key!r}: f=fraud l=legit s=skip q=quit")
    return KEYS[key], (note.strip() or None)


def render_case(console: Console, pending: PendingCase, history: CardHistory) -> None:
    case = pending.case
    tx = case.transaction
    table = Table(title=f"case {case.case_id}  score {case.score:.3f}  {case.decision.upper()}")
    table.add_column("field")
    table.add_column("value")
    for name, value in (
        ("transaction", tx.transaction_id),
        ("time", tx.event_time.isoformat()),
        ("card / customer", f"{tx.card_id} / {tx.customer_id}"),
        ("terminal", tx.terminal_id),
        ("amount", f"{tx.amount:.2f} {tx.currency}"),
        ("channel / mcc", f"{tx.channel} / {tx.merchant_category}"),
        ("model", case.model_version),
    ):
        table.add_row(name, value)
    for reason in case.reasons[:5]:
        table.add_row(f"reason {reason.feature}", f"{reason.text} ({reason.contribution:+.2f})")
    console.print(table)
    recent = history.recent(tx.card_id, exclude=tx.transaction_id)
    if recent:
        past = Table(title=f"recent decisions of card {tx.card_id}")
        for column in ("transaction", "time", "amount", "score", "decision"):
            past.add_column(column)
        for item in recent:
            past.add_row(
                item.transaction_id,
                item.event_time,
                f"{item.amount:.2f}",
                f"{item.score:.3f}",
                item.decision,
            )
        console.print(past)


def run_terminal(
    session: CaseSource,
    history: CardHistory,
    answers: Iterator[str] | TextIO,
    console: Console,
    *,
    poll_history: object = None,
    idle_polls: int | None = None,
) -> int:
    """Work cases until ``q``, end of input or ``idle_polls`` empty polls; returns verdicts."""
    lines = iter(answers)
    verdicts = 0
    empty = 0
    while True:
        if callable(poll_history):
            poll_history()
        cases = session.next_cases(timeout_s=1.0)
        if not cases:
            empty += 1
            if idle_polls is not None and empty >= idle_polls:
                return verdicts
            continue
        empty = 0
        for pending in cases:
            render_case(console, pending, history)
            while True:
                console.print(
                    "[bold]f[/]raud / [bold]l[/]egit / [bold]s[/]kip / [bold]q[/]uit (+ note) > ",
                    end="",
                )
                line = next(lines, None)
                if line is None:
                    return verdicts
                try:
                    verdict, note = parse_answer(line)
                except ValueError as exc:
                    console.print(f"[red]{exc}[/red]")
                    continue
                break
            if verdict is None:
                return verdicts
            session.verdict(pending, verdict, note)
            verdicts += 1
            console.print(f"[green]{verdict}[/green] {pending.transaction_id}")
