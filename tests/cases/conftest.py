"""Case store fixtures: every store test runs on SQLite (unit tier) and on PostgreSQL
(integration tier: ``FRAUD_TEST_POSTGRES_URL``, default the machine's 127.0.0.1:5432,
database ``test``), each PostgreSQL test in a schema of its own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from services.cases.store import CaseStore
from streams.events import Decision, Reason, ReviewCase, Transaction

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.unit),
    pytest.param("postgresql", marks=pytest.mark.integration),
]


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def postgres_url() -> str:
    return os.environ.get("FRAUD_TEST_POSTGRES_URL", POSTGRES_URL)


@pytest.fixture()
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (dropped afterwards)."""
    schema = f"t{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url())
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def open_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **options: object
) -> CaseStore:
    if backend == "sqlite":
        store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}", **options)
    else:
        schema = request.getfixturevalue("postgres_schema")
        store = CaseStore.open(
            postgres_url(), connect_args={"options": f"-csearch_path={schema}"}, **options
        )
    store.migrate()
    return store


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[CaseStore]:
    opened = open_store(request.param, tmp_path, request, clock=clock, lease_s=600.0)
    try:
        yield opened
    finally:
        opened.close()


def transaction(i: int, card: str = "C1", amount: float = 50.0, **extra: object) -> Transaction:
    return Transaction(
        transaction_id=f"tx{i:04d}",
        event_time=datetime(2026, 3, 1, 11, 0, tzinfo=UTC) + timedelta(seconds=i),
        card_id=card,
        customer_id=f"cu-{card}",
        terminal_id=f"T{i % 3}",
        amount=amount,
        **extra,  # type: ignore[arg-type]
    )


def review_case(i: int, card: str = "C1", amount: float = 50.0, score: float = 0.8) -> ReviewCase:
    tx = transaction(i, card, amount)
    return ReviewCase(
        case_id=f"case{i:04d}",
        transaction=tx,
        score=score,
        decision="review",
        model_version="v1",
        reasons=[Reason(feature="tx_amount", value=amount, contribution=1.2, text="high amount")],
        created_at=tx.event_time,
    )


def decision(i: int, card: str = "C1", amount: float = 50.0, score: float = 0.1) -> Decision:
    tx = transaction(i, card, amount)
    values = [0.0] * len(FEATURE_NAMES)
    values[FEATURE_NAMES.index("tx_amount")] = amount
    return Decision(
        transaction_id=tx.transaction_id,
        card_id=card,
        terminal_id=tx.terminal_id,
        event_time=tx.event_time,
        amount=amount,
        score=score,
        decision="approve",
        model_version="v1",
        feature_set=FEATURE_SET_ID,
        features=values,
    )
