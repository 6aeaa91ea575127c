"""The review console's load check (``fraudctl bench cases``), short: analysts claiming
and resolving over REST leave no case resolved twice and none lost, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.bench_cases import run_case_bench
from tests.cases.conftest import BACKENDS, postgres_url


@pytest.mark.parametrize("backend", BACKENDS)
def test_analysts_resolve_each_case_once_and_lose_none(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = None
    if backend == "postgresql":
        schema = request.getfixturevalue("postgres_schema")
        url = f"{postgres_url()}?options=-csearch_path%3D{schema}"
    result = run_case_bench(tmp_path, cases=30, analysts=3, duration_s=3.0, db_url=url)
    assert result["backend"] == backend
    assert result["resolved_twice"] == 0
    assert result["lost"] == 0
    assert result["errors"] == 0
    assert result["verdicts_answered"] > 0
    assert result["labels"] == result["resolved"] == result["verdicts_answered"]
    assert result["cases_in_store"] == result["cases_ingested"] >= 30
    assert result["queue_page_requests"] > 0 and result["queue_page_p99_ms"] is not None
    assert result["ok"] is True
