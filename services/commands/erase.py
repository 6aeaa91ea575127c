"""``fraudctl erase --customer ID --card ID...``: erase one customer's data (GDPR art. 17)."""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer
from rich.console import Console

from services.erasure.service import erase_customer
from services.erasure.settings import ErasureSettings
from streams.errors import FraudError

console = Console()


def erase(
    customer: str = typer.Option(..., help="the customer id to erase"),
    card: list[str] = typer.Option(
        [], help="a card token the customer holds (repeat); the issuer knows them"
    ),
    discover: bool = typer.Option(
        False,
        help="also scan the retained transactions and review topics for the customer's "
        "cards and transactions (reads every retained record: slow on big topics)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Remove the customer's data from Redis, the training store and the compacted
    changelogs, and record the erasure (FRAUD_* settings select the deployment).

    Append-only topics keep their records until their retention: see the README's
    security section. Idempotent: a second run removes nothing.
    """
    if not card and not discover:
        console.print("[red]give the customer's cards (--card) or --discover[/red]")
        raise typer.Exit(2)
    try:
        parts, store = _case_store_part()
        try:
            report = erase_customer(
                ErasureSettings(),
                customer,
                card,
                requested_by=f"cli:{getpass.getuser()}",
                discover_in_topics=discover,
                extra_parts=parts,
            )
        finally:
            if store is not None:
                store.close()
    except FraudError as exc:
        console.print(f"[red]erasure failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    console.print(
        f"erasure {report.erasure_id}: {report.cards} cards, {report.transactions} "
        f"transactions, {report.total_removed} items removed"
    )
    for part, counts in report.removed.items():
        console.print(f"  {part}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.remaining_redis_keys:
        console.print(f"[red]{report.remaining_redis_keys} Redis keys still name the ids[/red]")
        raise typer.Exit(1)


def _case_store_part() -> tuple[list[Any], Any]:
    """The case store's erasure part, when this deployment has a case store."""
    from services.cases.erasure import CaseStorePart
    from services.cases.service import open_store
    from services.cases.settings import CaseStoreSettings

    settings = CaseStoreSettings()
    default = settings.state_dir / "cases.db"
    if settings.cases_db_url is None and not default.exists():
        return [], None
    store = open_store(settings)
    return [CaseStorePart(store)], store
