"""Decisions never wait for reasons: a flagged transaction's decision is in the log before
its reasons are computed, its review case follows with them, and the batch is committed
only once both are acknowledged - also across a SIGKILL at every point of the cycle."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from confluent_kafka import Message, TopicPartition

from models.explain import Explainer
from models.registry import ModelBundle, ModelRegistry
from services.scorer.crashpoints import CRASH_POINTS
from services.scorer.pipeline import ScoringPipeline, StageClock
from services.scorer.reasons import ReasonsWorker
from services.scorer.service import Scorer, build_scorer
from streams.events import Reason, ReviewCase
from streams.topics import TRANSACTIONS, Topics
from tests.integration.conftest import SmallWorld, private_state
from tests.integration.scorer_helpers import (
    DecisionCounter,
    committed_equals_end,
    decode_decisions,
    produce,
    read_all,
    review_decoder,
    scorer_env,
    scorer_settings,
)
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration


class HeldExplainer(Explainer):
    """The champion's explainer, held until released; it logs when it ran."""

    def __init__(self, inner: Explainer, log: list[str], release: threading.Event) -> None:
        super().__init__(inner.booster, inner.feature_names, inner.medians)
        self.log = log
        self.release = release

    def explain(self, features: np.ndarray, top: int = 3) -> list[list[Reason]]:
        assert self.release.wait(60), "never released"
        self.log.append("reasons computed")
        return super().explain(features, top)


def _hold_reasons(scorer: Scorer, held: HeldExplainer) -> None:
    """The scorer's batches (and owed cases) explained by ``held``; every transaction is
    flagged (a review threshold of 0), so every batch has reasons to wait for."""
    current = scorer.champion.current()
    served = replace(current, explainer=held, policy=replace(current.policy, review_threshold=0.0))
    scorer.pipeline = ScoringPipeline(scorer.features, lambda: served)
    scorer.reasons.close()
    scorer.reasons = ReasonsWorker(lambda version: held)


def _cases(bootstrap: str, topic: str) -> list[ReviewCase]:
    out = []
    for m in read_all(bootstrap, topic, idle_s=1.5):
        case = review_decoder.decode(m.value())
        assert isinstance(case, ReviewCase), case
        out.append(case)
    return out


def _take(scorer: Scorer, n: int) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        got += scorer.consumer.consume(500, 0.5)
    assert len(got) == n
    return got


def test_a_flagged_decision_is_written_before_its_reasons_are_computed(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    transactions = small_world.as_events(2_000)
    produce(kafka_bootstrap, topics.transactions, transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "r0")
    scorer = build_scorer(scorer_settings(env))
    order: list[str] = []
    release = threading.Event()
    held = HeldExplainer(scorer.champion.current().explainer, order, release)
    _hold_reasons(scorer, held)
    scorer.consumer.subscribe([topics.transactions])
    messages = _take(scorer, 2_000)
    parts = [
        TopicPartition(topics.transactions, p) for p in range(topics.partition_count(TRANSACTIONS))
    ]
    try:
        scorer.process(messages, StageClock())  # returns with the explainer still held
        order.append("decisions sent")
        assert scorer.producer.flush(30) == 0
        decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.5))
        flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
        assert len(decisions) == 2_000 and flagged
        assert all(d.reasons == [] for d in decisions)  # the stream's decisions wait for none
        assert _cases(kafka_bootstrap, topics.review) == []
        assert scorer.unsettled is not None and not scorer.unsettled.cases.done()
        assert all(tp.offset < 0 for tp in scorer.consumer.committed(parts, timeout=10))
        assert scorer.ledger.undecided([t.transaction_id for t in transactions]).all()

        release.set()
        scorer.settle(synchronous=True)
        assert order == ["decisions sent", "reasons computed"]
        assert committed_equals_end(
            kafka_bootstrap, env["FRAUD_GROUP_ID"], topics.transactions, len(parts)
        )
    finally:
        release.set()
        scorer.close()
    cases = _cases(kafka_bootstrap, topics.review)
    assert sorted(c.case_id for c in cases) == sorted(flagged)
    assert all(c.reasons for c in cases)


def test_sent_batches_wait_for_their_reasons_up_to_the_bound(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """With reasons held, sent batches stay unsettled (their decisions all out) up to
    ``max_unsettled_batches`` = 2; the third batch's decisions go out, then the scorer
    waits for the oldest batch's reasons before it polls again. Released, all settle in
    order and everything is committed."""
    transactions = small_world.as_events(6_000)
    produce(kafka_bootstrap, topics.transactions, transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "r1")
    settings = scorer_settings(env).model_copy(update={"max_unsettled_batches": 2})
    scorer = build_scorer(settings)
    order: list[str] = []
    release = threading.Event()
    held = HeldExplainer(scorer.champion.current().explainer, order, release)
    _hold_reasons(scorer, held)
    scorer.consumer.subscribe([topics.transactions])
    messages = _take(scorer, 6_000)
    batches = [messages[i : i + 2_000] for i in range(0, 6_000, 2_000)]
    try:
        for n, batch in enumerate(batches[:2], 1):
            scorer.process(batch, StageClock())
            order.append(f"batch {n} sent")
        assert len(scorer.settler.pending) == 2 and scorer.decided == 0
        releaser = threading.Timer(2.0, release.set)
        releaser.start()
        scorer.process(batches[2], StageClock())  # over the bound: waits for batch 1
        order.append("batch 3 sent")
        releaser.join()
        assert order[:3] == ["batch 1 sent", "batch 2 sent", "reasons computed"]
        assert order[-1] == "batch 3 sent"
        assert 2_000 <= scorer.decided < 6_000 and len(scorer.settler.pending) <= 2
        scorer.settle(synchronous=True)
        assert scorer.decided == 6_000 and not scorer.settler.pending
    finally:
        release.set()
        scorer.close()
    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
    assert len(flagged) == 6_000
    cases = _cases(kafka_bootstrap, topics.review)
    assert sorted(c.case_id for c in cases) == sorted(flagged)
    assert all(c.reasons for c in cases)


def test_a_transaction_repeated_while_earlier_batches_wait_is_decided_once(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """Batches held for their reasons are not in the ledger yet: a transaction of the
    oldest one that comes again two batches later (an upstream retry) is skipped by its
    sent id, not decided a second time."""
    events = small_world.as_events(300)
    first, second, new = events[:100], events[100:200], events[200:]
    repeated = first[:50]
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "r4")
    settings = scorer_settings(env).model_copy(update={"max_unsettled_batches": 4})
    scorer = build_scorer(settings)
    release = threading.Event()
    _hold_reasons(scorer, HeldExplainer(scorer.champion.current().explainer, [], release))
    scorer.consumer.subscribe([topics.transactions])
    try:
        batches = []
        for part in (first, second, repeated + new):
            produce(kafka_bootstrap, topics.transactions, part)
            batches.append(_take(scorer, len(part)))
        for batch in batches:
            scorer.process(batch, StageClock())
        assert len(scorer.settler.pending) == 3 and scorer.decided == 0
        release.set()
        scorer.settle(synchronous=True)
        assert scorer.decided == 300
    finally:
        release.set()
        scorer.close()
    decided = Counter(
        d.transaction_id for d in decode_decisions(read_all(kafka_bootstrap, topics.scored))
    )
    assert sorted(decided) == sorted(t.transaction_id for t in events)
    assert set(decided.values()) == {1}


@pytest.fixture
def flagging_state(champion_state: Path, trained_bundle: ModelBundle, tmp_path: Path) -> Path:
    """A copy of the champion state whose champion flags ~15 % of transactions (the top
    15 % of its reference rows): a card-testing burst's share, not the simulator's."""
    state = private_state(champion_state, tmp_path / "flagging")
    scores = lgb.Booster(model_str=trained_bundle.model_text).predict(trained_bundle.reference)
    threshold = float(np.quantile(scores, 0.85))
    policy = trained_bundle.policy
    flagging = replace(
        policy,
        review_threshold=threshold,
        decline_threshold=max(policy.decline_threshold, threshold),
    )
    registry = ModelRegistry(state / "registry")
    version = registry.register(replace(trained_bundle, policy=flagging))
    registry.promote(version.version, reason="flags a burst's share")
    return state


def test_after_a_sigkill_at_every_point_each_flagged_transaction_has_one_case_with_reasons(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    flagging_state: Path,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    """The scorer kills itself at its 3rd batch's crash point, once per point (among them
    ``before_cases``: decisions in the log, their review cases not), restarting each time
    from the replay; then it runs to the end of the stream."""
    total = 8_000
    transactions = small_world.as_events(total)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, flagging_state, "rk")
    sender = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, transactions, 1_000.0)
    )
    sender.start()
    command = ["--metrics-port", "0"]
    scorer_cmd = [sys.executable, "-m", "services.scorer"]
    owed_seen = 0
    for point in CRASH_POINTS:
        crashing = ServiceProcess(
            command,
            {**env, "FRAUD_CRASH_AT": point, "FRAUD_CRASH_AFTER": "3"},
            tmp_path / f"{point}.log",
            command=scorer_cmd,
        )
        assert crashing.proc.wait(120) == -signal.SIGKILL, crashing.output()[-2000:]
        assert f"stage=crash_hook point={point}" in crashing.output()
        if point == "before_cases":  # the window this test is about was really open
            decided = decode_decisions(read_all(kafka_bootstrap, topics.scored, idle_s=1.0))
            reviewed = {c.case_id for c in _cases(kafka_bootstrap, topics.review)}
            owed_seen = sum(
                1 for d in decided if d.decision != "approve" and d.transaction_id not in reviewed
            )
    restarted = ServiceProcess(command, env, tmp_path / "restarted.log", command=scorer_cmd)
    sender.join(120)
    counter = DecisionCounter(kafka_bootstrap, topics.scored)
    deadline = time.monotonic() + 120
    while counter.count(poll_s=0.5) < total and time.monotonic() < deadline:
        pass
    counter.close()
    time.sleep(2.0)  # the last batch's review cases follow its decisions
    assert restarted.terminate() == 0, restarted.output()[-2000:]

    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == total and max(counts.values()) == 1, counts.most_common(2)
    flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
    cases = _cases(kafka_bootstrap, topics.review)
    case_counts = Counter(c.case_id for c in cases)
    assert set(case_counts) == flagged and max(case_counts.values()) == 1
    assert all(c.reasons for c in cases)
    assert len(flagged) > total // 50  # the burst's share of flags, roughly
    assert owed_seen > 0  # at least one case was owed and rebuilt on replay
    assert committed_equals_end(
        kafka_bootstrap,
        env["FRAUD_GROUP_ID"],
        topics.transactions,
        topics.partition_count(TRANSACTIONS),
    )
