"""Load-test building blocks without a broker: decision matching, pacing, load shapes, the
SLA verdict (on Locust's real stats classes), the options and the transaction feed."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta

import pytest

# Importing Locust gevent-patches the whole process unless told not to; this is pytest.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"

from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments
from locust.stats import RequestStats

from loadtest.feed import ATTACK, TransactionFeed
from loadtest.mixes import ATTACK_SHARE
from loadtest.options import add_arguments, load_options, sla_thresholds
from loadtest.runtime import Pacer
from loadtest.shapes import Attack, Constant, Spike, Step, build_profile
from loadtest.sla import SlaThresholds, evaluate, evaluate_run
from loadtest.tracker import (
    ACK,
    E2E,
    DecisionTimeout,
    DecisionTracker,
    ProduceFailed,
)
from streams.events import Transaction
from streams.serde import encode, transaction_decoder
from streams.simulator import SimulatorConfig

pytestmark = pytest.mark.unit

Reported = list[tuple[str, float, Exception | None]]


def tracker(timeout_s: float = 5.0) -> tuple[DecisionTracker, Reported]:
    reported: Reported = []
    return DecisionTracker(lambda *event: reported.append(event), timeout_s), reported


# -- tracker ----------------------------------------------------------------------------
def test_a_decision_reports_produce_to_readable_in_ms() -> None:
    t, reported = tracker()
    t.sent("tx1", at=10.0)
    assert t.decided("tx1", at=10.0125) is True
    assert reported == [(E2E, pytest.approx(12.5), None)]
    assert (t.outstanding, t.counts.decided) == (0, 1)


def test_decisions_of_other_runs_are_ignored_and_counted() -> None:
    t, reported = tracker()
    t.sent("tx1", at=1.0)
    assert t.decided("other-run-tx", at=1.1) is False
    assert t.decided("tx1", at=1.2) is True
    assert t.decided("tx1", at=1.3) is False  # a duplicate decision is not a second sample
    assert [r[0] for r in reported] == [E2E]
    assert (t.counts.foreign, t.counts.decided) == (2, 1)


def test_no_decision_within_the_timeout_is_a_failure_with_the_time_waited() -> None:
    t, reported = tracker(timeout_s=2.0)
    t.sent("old", at=0.0)
    t.sent("young", at=1.5)
    assert t.expire(now=1.99) == 0
    assert t.expire(now=2.5) == 1
    ((name, ms, error),) = reported
    assert (name, ms) == (E2E, pytest.approx(2500.0))
    assert isinstance(error, DecisionTimeout) and error.transaction_id == "old"
    assert "old" not in str(error)  # Locust groups failures by message: one row, not one per tx
    assert t.outstanding == 1 and t.counts.timed_out == 1
    assert t.decided("old", at=3.0) is False  # too late: already a failure


def test_end_of_run_settles_every_outstanding_transaction() -> None:
    t, reported = tracker(timeout_s=5.0)
    for i in range(3):
        t.sent(f"tx{i}", at=float(i))
    t.decided("tx1", at=1.01)
    assert t.expire_all(now=4.0) == 2
    assert [(r[0], r[2] is None) for r in reported] == [(E2E, True), (E2E, False), (E2E, False)]
    assert t.counts.reported == t.counts.sent == 3 and t.outstanding == 0


def test_acks_are_reported_and_a_failed_produce_settles_the_transaction() -> None:
    t, reported = tracker()
    t.sent("ok", at=0.0)
    t.sent("lost", at=0.0)
    t.acked("ok", sent_at=0.0, at=0.004, error=None)
    t.acked("lost", sent_at=0.0, at=0.030, error="Broker: Message timed out")
    assert [(n, round(ms, 3)) for n, ms, _ in reported] == [(ACK, 4.0), (ACK, 30.0), (E2E, 30.0)]
    assert isinstance(reported[2][2], ProduceFailed)
    assert (t.counts.acked, t.counts.produce_failed, t.outstanding) == (1, 1, 1)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DecisionTracker(lambda *_: None, 0)


# -- pacing -----------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_keeps_the_exact_rate_and_catches_up_a_little() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=50.0, clock=clock)
    assert pacer.wait() == pytest.approx(0.02)
    clock.now += 0.02
    assert pacer.wait() == pytest.approx(0.02)
    clock.now += 0.05  # the task took longer: the next one (due 100.06) goes at once
    assert pacer.wait() == 0.0
    assert pacer.wait() == pytest.approx(0.01)  # due 100.08 at 100.07: back on schedule


def test_pacer_restarts_after_a_stall_instead_of_bursting() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10.0, max_burst_s=1.0, clock=clock)
    clock.now += 30.0
    assert pacer.wait() == 0.0
    assert pacer.wait() == pytest.approx(0.1)


# -- shapes -----------------------------------------------------------------------------
def test_constant_shape_holds_then_stops_at_the_run_time() -> None:
    shape = Constant(users=4, spawn_rate=4.0, run_time_s=30.0)
    assert [shape.tick(t) for t in (0.0, 29.9, 30.0)] == [(4, 4.0), (4, 4.0), None]
    assert Constant(2, 1.0).tick(1e6) == (2, 1.0)


def test_step_shape_adds_users_each_step_up_to_the_maximum() -> None:
    shape = Step(users=10, step_users=4, step_time_s=10.0, spawn_rate=10.0)
    assert shape.steps == 3
    ticks = [shape.tick(t) for t in (0.0, 9.9, 10.0, 25.0, 29.9, 30.0)]
    assert ticks == [(4, 10.0), (4, 10.0), (8, 10.0), (10, 10.0), (10, 10.0), None]
    held = Step(users=10, step_users=5, step_time_s=10.0, spawn_rate=10.0, run_time_s=60.0)
    assert held.tick(55.0) == (10, 10.0)


def test_spike_shape_jumps_at_once_and_comes_back() -> None:
    shape = Spike(users=2, spike_users=12, spike_at_s=10.0, spike_time_s=5.0, spawn_rate=2.0)
    ticks = [shape.tick(t) for t in (0.0, 10.0, 14.9, 15.0, 24.9, 25.0)]
    assert ticks == [(2, 2.0), (12, 12.0), (12, 12.0), (2, 2.0), (2, 2.0), None]


def test_attack_shape_is_a_spike_whose_traffic_is_an_attack_burst() -> None:
    """The users jump as in a spike; while it lasts the feed sends the attack mix: a
    share of the transactions with a stolen card's amount, past the fraud threshold."""
    shape = Attack(Spike(users=2, spike_users=6, spike_at_s=10.0, spike_time_s=5.0, spawn_rate=2.0))
    times = (0.0, 9.9, 10.0, 14.9, 15.0, 24.9, 25.0)
    assert [shape.tick(t) for t in times] == [
        (2, 2.0),
        (2, 2.0),
        (6, 6.0),
        (6, 6.0),
        (2, 2.0),
        (2, 2.0),
        None,
    ]
    assert [shape.attacking(t) for t in times] == [False, False, True, True, False, False, False]

    feed = TransactionFeed(world="small", seed=3, chunk=256)
    threshold = SimulatorConfig.small().fraud_amount_threshold
    try:
        before = [feed.next().amount for _ in range(2_000)]
        ATTACK.on = True
        during = [feed.next().amount for _ in range(2_000)]
    finally:
        ATTACK.on = False
    after = [feed.next().amount for _ in range(2_000)]
    stolen = [sum(a >= 1.2 * threshold for a in run) / 2_000 for run in (before, during, after)]
    assert stolen[0] < 0.02 and stolen[2] < 0.02
    assert ATTACK_SHARE - 0.04 < stolen[1] < ATTACK_SHARE + 0.04


def _namespace(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "num_users": 10,
        "spawn_rate": 5.0,
        "run_time": 90,
        "shape": "constant",
        "step_users": None,
        "step_time_s": 20.0,
        "spike_users": None,
        "spike_at_s": None,
        "spike_time_s": 10.0,
    }
    return argparse.Namespace(**(values | overrides))


def test_build_profile_reads_locusts_common_options() -> None:
    assert build_profile(_namespace()) == Constant(10, 5.0, 90.0)
    assert build_profile(_namespace(shape="step")) == Step(10, 2, 20.0, 5.0, 90.0)
    assert build_profile(_namespace(shape="spike")) == Spike(10, 30, 30.0, 10.0, 5.0, 90.0)
    assert build_profile(_namespace(shape="attack")) == Attack(Spike(10, 30, 30.0, 10.0, 5.0, 90.0))


# -- SLA verdict ------------------------------------------------------------------------
def _stats(latencies_ms: list[int], failures: int = 0) -> RequestStats:
    stats = RequestStats()
    for ms in latencies_ms:
        stats.log_request("kafka", E2E, ms, 0)
    for _ in range(failures):
        stats.log_request("kafka", E2E, 5000, 0)
        stats.log_error("kafka", E2E, DecisionTimeout("x", 5.0))
    stats.log_request("kafka", ACK, 1, 0)
    return stats


def test_verdict_passes_when_every_threshold_is_met() -> None:
    stats = _stats([5] * 199 + [40])
    verdict = evaluate(stats.get(E2E, "kafka"), SlaThresholds(p95_ms=10, p99_ms=50))
    assert verdict.passed
    assert dict(verdict.percentiles)[0.99] == 5.0 and dict(verdict.percentiles)[1.0] == 40.0
    assert verdict.line().startswith("SLA PASS  kafka e2e decision: p95 5 ms <= 10, p99 5 ms <= 50")
    assert "(200 requests, 0 failed)" in verdict.line()


def test_verdict_fails_on_latency_failures_or_throughput() -> None:
    stats = _stats([5] * 90 + [80] * 10)
    verdict = evaluate(stats.get(E2E, "kafka"), SlaThresholds(p99_ms=50))
    assert not verdict.passed and "p99 80 ms > 50" in verdict.line()
    assert "       p99       80       50  NO" in verdict.table().splitlines()

    failing = evaluate(_stats([5] * 98, failures=2).get(E2E, "kafka"), SlaThresholds())
    assert not failing.passed and "failures 2.00% > 0.00%" in failing.line()
    tolerant = SlaThresholds(max_fail_ratio=0.05)
    assert evaluate(_stats([5] * 98, failures=2).get(E2E, "kafka"), tolerant).passed

    slow = evaluate(stats.get(E2E, "kafka"), SlaThresholds(min_rps=1e9))
    assert not slow.passed and "throughput" in slow.line()


def test_run_verdict_is_about_e2e_not_acks_and_fails_without_samples() -> None:
    stats = _stats([3] * 10)
    (verdict,) = evaluate_run(stats.entries.values(), SlaThresholds(p99_ms=1))
    assert (verdict.method, verdict.name, verdict.requests) == ("kafka", E2E, 10)
    assert not verdict.passed  # p99 3 ms > 1 ms although the acks took 1 ms
    (empty,) = evaluate_run(RequestStats().entries.values(), SlaThresholds())
    assert not empty.passed and empty.line() == "SLA FAIL  kafka e2e decision: no samples"
    assert evaluate_run(stats.entries.values(), SlaThresholds())[0].as_dict()["passed"] is True


# -- options ----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = get_empty_argument_parser(add_help=False, default_config_files=[])
    setup_parser_arguments(parser)
    add_arguments(parser)
    return parser


def test_options_come_from_flags_or_fraud_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_SLA_P99_MS", "50")
    monkeypatch.setenv("FRAUD_LOADTEST_API_KEY", "k-123")
    parsed = _parser().parse_args(["--user-rate", "25", "--shape", "spike", "--sla-p95-ms", "30"])
    options = load_options(parsed)
    assert (options.user_rate, options.shape, options.world) == (25.0, "spike", "default")
    assert options.api_key.get_secret_value() == "k-123" and "k-123" not in repr(options)
    assert sla_thresholds(parsed) == SlaThresholds(p95_ms=30, p99_ms=50, max_fail_ratio=0.0)


def test_invalid_options_are_refused() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--shape", "sawtooth"])
    with pytest.raises(ValueError):
        load_options(_parser().parse_args(["--user-rate", "0"]))


# -- feed -------------------------------------------------------------------------------
def test_feed_sends_valid_transactions_with_unique_ids_per_run() -> None:
    first, second = TransactionFeed(world="small", chunk=64), TransactionFeed(world="small")
    before = datetime.now(UTC)
    sent = [first.next() for _ in range(200)]
    assert all(isinstance(transaction_decoder.decode(encode(tx)), Transaction) for tx in sent)
    assert len({tx.transaction_id for tx in sent}) == 200
    assert not {tx.transaction_id for tx in sent} & {
        second.next().transaction_id for _ in range(200)
    }
    assert all(before <= tx.event_time <= datetime.now(UTC) + timedelta(seconds=1) for tx in sent)


def test_importing_locust_here_left_the_test_process_unpatched() -> None:
    from gevent import monkey

    assert not monkey.is_module_patched("threading")  # other tests' threads stay threads
