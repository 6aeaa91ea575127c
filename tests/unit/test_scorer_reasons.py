"""The reasons worker: review cases computed off the scoring thread, with the reasons the
explainer gives, in the order submitted; owed cases explained by their model version."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import pytest

from models.explain import Explainer
from services.scorer.reasons import Flagged, ReasonsWorker, explain
from streams.events import Decision, Transaction
from tests.unit.test_model_synthetic import FEATURES, synthetic_table

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    table = synthetic_table(days=4, per_day=200)
    x = table[FEATURES].to_numpy(np.float32)
    params = {"objective": "binary", "verbose": -1, "deterministic": True, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, table["is_fraud"].to_numpy()), 10)
    return Explainer(booster, FEATURES, np.nanmedian(x, axis=0))


def _flagged(n: int, version: str = "v1") -> Flagged:
    rng = np.random.default_rng(7)
    features = rng.random((n, len(FEATURES))).astype(np.float32)
    txs = [
        Transaction(
            transaction_id=f"t{i}",
            card_id=f"c{i}",
            customer_id=f"u{i}",
            terminal_id="term",
            amount=10.0 + i,
            event_time=datetime(2026, 12, 1, tzinfo=UTC),
        )
        for i in range(n)
    ]
    decisions = [
        Decision(
            transaction_id=t.transaction_id,
            card_id=t.card_id,
            terminal_id=t.terminal_id,
            event_time=t.event_time,
            amount=t.amount,
            score=0.9,
            decision="review",
            model_version=version,
            feature_set="fs",
            features=features[i].astype(np.float64).tolist(),
        )
        for i, t in enumerate(txs)
    ]
    return Flagged(decisions, txs, features)


def test_cases_carry_the_explainers_reasons_in_order(explainer: Explainer) -> None:
    flagged = _flagged(5)
    given = Flagged(flagged.decisions, flagged.transactions, flagged.features, explainer)
    cases = explain([given], lambda version: pytest.fail("the batch's explainer is given"))
    assert [c.case_id for c in cases] == ["t0", "t1", "t2", "t3", "t4"]
    assert [c.reasons for c in cases] == explainer.explain(flagged.features)
    assert all(c.reasons and c.decision == "review" and c.model_version == "v1" for c in cases)


def test_owed_cases_are_explained_from_the_decisions_features_by_version(
    explainer: Explainer,
) -> None:
    """An owed decision carries no features matrix nor explainer: its own vector is used,
    with the explainer of its model version."""
    flagged = _flagged(3, version="v0")
    asked: list[str] = []

    def explainer_for(version: str) -> Explainer:
        asked.append(version)
        return explainer

    owed = Flagged(flagged.decisions, flagged.transactions)
    cases = explain([Flagged(), owed], explainer_for)
    assert asked == ["v0"]
    assert [c.reasons for c in cases] == explainer.explain(flagged.features)


def test_the_worker_computes_on_its_own_thread_and_the_caller_goes_on(
    explainer: Explainer,
) -> None:
    """submit() returns at once; the reasons come when the (here: held) explainer is done."""
    release = threading.Event()
    threads: list[str] = []

    class Held(Explainer):
        def explain(self, features: np.ndarray, top: int = 3) -> list[list]:  # type: ignore[type-arg]
            threads.append(threading.current_thread().name)
            assert release.wait(10)
            return explainer.explain(features, top)

    held = Held(explainer.booster, FEATURES, explainer.medians)
    flagged = _flagged(2)
    worker = ReasonsWorker(lambda version: held)
    try:
        future = worker.submit([Flagged(flagged.decisions, flagged.transactions)])
        assert not future.done()  # the caller is not waiting for the explainer
        release.set()
        cases = future.result(10)
    finally:
        worker.close()
    assert [c.case_id for c in cases] == ["t0", "t1"]
    assert threads and threads[0].startswith("reasons")
    assert worker.submit([Flagged()]).result(0) == []  # nothing to explain: done at once
