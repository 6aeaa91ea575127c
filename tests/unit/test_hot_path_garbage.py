"""The decision path leaves no reference cycles behind, whatever the traffic.

Hot-path processes collect the young generation only every 100,000 allocations (ADR 0017).
That is safe while what the path allocates is freed by reference counting alone: garbage
held in cycles would pile up between collections instead. These tests count the
unreachable objects a collection finds after hostile and unusual traffic went through.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import timedelta

import msgspec
import pytest

from models.serving import ServingModel
from services.scorer.pipeline import ScoringPipeline
from streams.events import Transaction
from tests.malformed import corpus_decoder, malformed_corpus
from tests.small_model import memory_store, small_served, stream

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def served() -> ServingModel:
    return small_served()


def _unreachable_after(work: Callable[[], object]) -> int:
    """Cyclic garbage ``work`` left: what a full collection right after it finds."""
    gc.collect()
    gc.disable()
    try:
        work()
        return gc.collect()
    finally:
        gc.enable()


def test_refusing_hostile_payloads_leaves_no_cycles() -> None:
    corpus = malformed_corpus(3_000)
    assert len({reason for _, reason in corpus}) >= 5  # many kinds of refusal
    results: list[object] = []
    found = _unreachable_after(lambda: results.extend(corpus_decoder.decode(p) for p, _ in corpus))
    assert found == 0
    assert len(results) == len(corpus)


def _renamed(txs: list[Transaction], prefix: str, **changes: object) -> list[Transaction]:
    return [
        msgspec.structs.replace(t, transaction_id=f"{prefix}-{i}", **changes)
        for i, t in enumerate(txs)
    ]


def test_scoring_bursts_cold_cards_and_replays_leaves_no_cycles(served: ServingModel) -> None:
    history = stream(1_600)
    store = memory_store()
    store.update_batch(history[:1_000])
    pipeline = ScoringPipeline(store, lambda: served)
    last = history[1_399].event_time
    burst = [  # card testing: one card, many terminals, rising small amounts, one second apart
        msgspec.structs.replace(
            t,
            transaction_id=f"burst-{i}",
            card_id="K-burst",
            amount=1.0 + i,
            event_time=last + timedelta(seconds=i + 1),
        )
        for i, t in enumerate(history[1_400:1_500])
    ]
    batches = [
        (history[1_000:1_250], False),
        (burst, True),  # explained at once, as the REST API does
        (_renamed(history[1_250:1_400], "cold", card_id="K-cold-0"), False),
        (history[1_000:1_100], False),  # replays: already applied
        (history[1_500:1_600], False),
    ]
    decided: list[int] = []
    flagged: list[int] = []

    def work() -> None:
        for txs, explain in batches:
            scored = pipeline.score(txs, explain=explain)
            decided.append(len(scored.decisions))
            flagged.append(sum(d.decision != "approve" for d in scored.decisions))
            rows = scored.flagged.features
            if rows is not None and len(rows):  # the reasons worker's share of the work
                served.explainer.explain(rows)

    found = _unreachable_after(work)
    assert found == 0
    assert decided == [len(txs) for txs, _ in batches]
    assert sum(flagged) > 0  # the flagged path (reasons, review cases) ran
    assert store.stats.duplicates >= 100
