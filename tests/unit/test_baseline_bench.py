"""The benchmark's pure parts: percentiles, the ramp's knee, targets, and the report files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest.bench_report import write_report
from loadtest.bench_scorer import ScorerBenchConfig, knee_reach, knee_reach_line, targets
from loadtest.latency import percentiles, ramp, step_passes

pytestmark = pytest.mark.unit


def _step(
    service: str, rate: float, p99: float, *, achieved: float | None = None
) -> dict[str, Any]:
    return {
        "service": service,
        "target_rate": rate,
        "achieved_rate": rate if achieved is None else achieved,
        "sent": int(rate),
        "received": int(rate),
        "missing": 0,
        "p50_ms": p99 / 4,
        "p95_ms": p99 / 2,
        "p99_ms": p99,
        "max_ms": p99 * 2,
    }


def test_percentiles_of_known_samples() -> None:
    stats = percentiles(np.arange(1, 101, dtype=float))
    assert stats["n"] == 100
    assert stats["p50_ms"] == 50.5 and stats["max_ms"] == 100.0 and stats["mean_ms"] == 50.5
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert percentiles([]) == {"n": 0}


def test_ramp_goes_past_the_sla_until_overload_and_reports_the_knee() -> None:
    p99_at = {1000.0: 8.0, 2000.0: 12.0, 4000.0: 49.0, 8000.0: 180.0, 12000.0: 5.0}
    p99_at |= {16000.0: 400.0, 32000.0: 6.0}
    seen: list[float] = []

    def measure(rate: float) -> dict[str, Any]:
        seen.append(rate)
        return _step("scorer", rate, p99_at[rate])

    result = ramp(measure, sorted(p99_at), sla_p99_ms=50.0, log=lambda _: None)
    # 8000 misses the SLA but is not overloaded (<= 200 ms): the curve goes on; 16000 is
    # overloaded: the ramp stops and never reaches 32000
    assert seen == [1000.0, 2000.0, 4000.0, 8000.0, 12000.0, 16000.0]
    assert result["knee_tx_per_s"] == 4000.0  # 12000 passing after a miss is not the knee
    assert result["overload_p99_ms"] == 200.0
    assert [s["target_rate"] for s in result["steps"]] == seen
    assert result["knee_limit"] == "sla"


def test_a_knee_no_step_missed_is_a_lower_bound_and_says_what_bounded_it() -> None:
    def run(p99: float, achieved: dict[float, float]) -> dict[str, Any]:
        return ramp(
            lambda rate: _step("echo", rate, p99, achieved=achieved.get(rate, rate)),
            [1000.0, 2000.0, 4000.0],
            sla_p99_ms=50.0,
            log=lambda _: None,
        )

    top = run(9.0, {})
    assert (top["knee_tx_per_s"], top["knee_limit"]) == (4000.0, "ramp_top")
    behind = run(9.0, {4000.0: 3000.0})  # latency fine, the producer could not keep 4,000/s
    assert (behind["knee_tx_per_s"], behind["knee_limit"]) == (2000.0, "load_generator")
    slow = run(60.0, {})
    assert (slow["knee_tx_per_s"], slow["knee_limit"]) == (0.0, "sla")


def test_a_step_fails_on_missing_records_or_a_producer_that_fell_behind() -> None:
    assert step_passes(_step("echo", 1000.0, 10.0))
    assert not step_passes({**_step("echo", 1000.0, 10.0), "missing": 3})
    assert not step_passes(_step("echo", 8000.0, 10.0, achieved=6000.0))
    assert not step_passes({"service": "echo", "target_rate": 1.0, "error": "boom"})


def _scorer_result() -> dict[str, Any]:
    ramps = {
        "echo": {"steps": [_step("echo", 1000, 5), _step("echo", 4000, 9)], "knee_tx_per_s": 4000},
        "scorer": {
            "steps": [_step("scorer", 1000, 12), _step("scorer", 4000, 70)],
            "knee_tx_per_s": 1000,
        },
    }
    rest = {
        mode: {
            "endpoint": "POST /v1/score",
            "target_rps": 200,
            "achieved_rps": 199.0,
            "errors": 0,
            "audit_delivery": mode,
            "latency": {"p50_ms": 3.0, "p95_ms": 6.0, "p99_ms": p99},
        }
        for mode, p99 in (("acked", 12.0), ("async", 31.5))
    }
    return {
        "config": {"sla_p99_ms": 50.0},
        "machine": {"load_average_at_start": [1.0, 1.0, 1.0]},
        "model_version": "v0001",
        "backlog": {
            "decided": 1000,
            "tx_per_s": 12_000.0,
            "cpu_us_per_tx": 80.0,
            "max_rss_mb": 350.0,
            "stage_us_per_tx": {"features": 40.0},
        },
        "naive": {"tx_per_s": 400.0, "cpu_us_per_tx": 2000.0, "transactions": 100},
        "naive_ratio": 30.0,
        "latency": {
            "paced": {"echo": _step("echo", 2000, 6.0), "scorer": _step("scorer", 2000, 20.0)},
            "ramp": ramps,
        },
        "rest": {**rest["acked"], "by_audit_delivery": rest},
    }


def test_targets_compare_each_measure_with_the_issue() -> None:
    result = _scorer_result()
    checks = targets(result)
    assert checks["backlog_tx_per_s>=10000"] == {"value": 12_000.0, "met": True}
    assert checks["rss_mb<=300"] == {"value": 350.0, "met": False}
    assert checks["scorer_p99_minus_echo_p99_ms<=10"] == {"value": 14.0, "met": False}
    assert checks["knee_share_of_echo>=0.8"] == {"value": 0.25, "met": False}
    assert checks["cpu_us_per_tx<=30"] == {"value": 80.0, "met": False}
    knee = result["latency"]["ramp"]["scorer"]["knee_tx_per_s"]
    assert checks["knee_share_of_backlog>=0.6"] == {"value": knee / 12_000.0, "met": False}
    assert checks["naive_ratio>=20"] == {"value": 30.0, "met": True}
    assert checks["rest_p99_ms<=10"] == {"value": 12.0, "met": False}
    assert targets({})["backlog_tx_per_s>=10000"] == {"value": None, "met": None}


@pytest.mark.parametrize(
    ("scorer_limit", "echo_limit", "scorer_knee", "expected"),
    [
        # the echo never missed the SLA: the share is at most this
        ("sla", "ramp_top", 1000, {"value": 0.25, "met": False, "bound": "upper"}),
        ("sla", "load_generator", 3600, {"value": 0.9, "met": None, "bound": "upper"}),
        # the scorer never missed it: the share is at least this
        ("ramp_top", "sla", 3600, {"value": 0.9, "met": True, "bound": "lower"}),
        ("ramp_top", "sla", 1000, {"value": 0.25, "met": None, "bound": "lower"}),
        ("ramp_top", "ramp_top", 3600, {"value": 0.9, "met": None, "bound": "unknown"}),
        ("sla", "sla", 3600, {"value": 0.9, "met": True}),
    ],
)
def test_the_knee_share_is_decided_only_where_its_bound_allows(
    scorer_limit: str, echo_limit: str, scorer_knee: float, expected: dict[str, Any]
) -> None:
    result = _scorer_result()
    ramps = result["latency"]["ramp"]
    ramps["scorer"] |= {"knee_tx_per_s": scorer_knee, "knee_limit": scorer_limit}
    ramps["echo"] |= {"knee_limit": echo_limit}
    assert targets(result)["knee_share_of_echo>=0.8"] == expected


@pytest.mark.parametrize(
    ("echo_knee", "echo_limit", "backlog", "beyond", "text"),
    [
        (32_000, "ramp_top", 22_000.0, True, "hold >= 25,600 tx/s within the SLA"),
        (20_000, "sla", 22_000.0, False, "hold 16,000 tx/s within the SLA"),
    ],
)
def test_the_knee_target_is_set_beside_the_scorers_backlog_ceiling(
    echo_knee: float, echo_limit: str, backlog: float, beyond: bool, text: str
) -> None:
    result = _scorer_result()
    result["latency"]["ramp"]["echo"] |= {"knee_tx_per_s": echo_knee, "knee_limit": echo_limit}
    result["backlog"]["tx_per_s"] = backlog
    reach = knee_reach(result)
    assert reach == {
        "needed_tx_per_s": 0.8 * echo_knee,
        "needed_is_lower_bound": echo_limit != "sla",
        "backlog_tx_per_s": backlog,
        "beyond_backlog": beyond,
    }
    line = knee_reach_line(reach)
    assert text in line and line.endswith(f"{'beyond' if beyond else 'within'} its throughput")
    assert knee_reach({"backlog": {"tx_per_s": backlog}}) is None  # no ramp, nothing to say


def test_report_files_hold_the_numbers(tmp_path: Path) -> None:
    scorer = _scorer_result()
    scorer["latency"]["ramp"]["echo"]["knee_limit"] = "ramp_top"
    scorer["targets"] = targets(scorer)
    scorer["knee_reach"] = knee_reach(scorer)
    report = {
        "date": "2026-11-23",
        "quick": False,
        "started_at": "t0",
        "finished_at": "t1",
        "machine": {
            "cores_logical": 2,
            "cores_physical": 1,
            "cpu_model": "AMD EPYC",
            "memory_gb": 8.0,
            "load_average_at_start": [3.0, 2.0, 1.0],
        },
        "benches": {"scorer": scorer, "model": {"error": "DataError: no rows"}},
    }
    paths = write_report(report, tmp_path, "2026-11-23")

    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["md"].read_text()
    assert "ratio **30.0x**" in text
    assert (
        "Knee (highest rate with p99 <= SLA), tx/s: echo >= 4,000 (ramp top), scorer 1,000" in text
    )
    assert "| knee_share_of_echo>=0.8 | 0.25 (upper bound) | False |" in text
    assert (
        "The knee target needs the scorer to hold >= 3,200 tx/s within the SLA; its backlog "
        "run (no latency bound) decided 12,000 tx/s: within its throughput." in text
    )
    paced = "| paced | scorer | 2,000 | 2,000 | 5.0 | 10.0 | 20.0 | 40.0 | 0 | - | - | - | - |"
    assert paced + "\n" in text
    assert "failed: `DataError: no rows`" in text
    assert "load average at start [3.0, 2.0, 1.0]" in text
    assert "(achieved 199.0, audit acked): p50 3.00 ms, p95 6.00 ms, p99 12.00 ms" in text
    assert "(achieved 199.0, audit async): p50 3.00 ms, p95 6.00 ms, p99 31.50 ms" in text
    saved = json.loads(paths["json"].read_text())
    assert saved["benches"]["scorer"]["naive_ratio"] == 30.0
    assert saved["files"]["png"] == str(paths["png"])


def test_the_quick_config_is_small_and_keeps_every_phase() -> None:
    quick, full = ScorerBenchConfig.quick(), ScorerBenchConfig()
    assert quick.backlog < full.backlog and quick.naive < full.naive
    assert quick.ramp_rates and quick.rest_rps > 0 and quick.duration_s > 0
    assert full.backlog == 200_000 and full.rate == 2_000.0 and full.duration_s == 30.0


def test_scorer_stage_times_are_read_from_its_metrics_between_two_readings() -> None:
    """The latency bench's per-batch stage times: the scorer's own histograms, as it
    exports them on ``/metrics``, differenced over one step."""
    from prometheus_client import CollectorRegistry, Histogram, start_http_server

    from loadtest.bench_scorer import _stage_totals, _stages_between
    from services.stack.process import free_port

    registry = CollectorRegistry()
    stage = Histogram("fraud_stage_latency_seconds", "s", ["stage"], registry=registry)
    size = Histogram("fraud_batch_size_records", "b", registry=registry)
    pause = Histogram("fraud_gc_pause_seconds", "g", ["generation"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        stage.labels("features").observe(1.0)  # before the step: not counted
        before = _stage_totals(port)
        for features_s, n in ((0.004, 30), (0.002, 50)):
            stage.labels("features").observe(features_s)
            stage.labels("produce").observe(0.003)
            size.observe(n)
        pause.labels("2").observe(0.0625)
        pause.labels("0").observe(0.001)
        step = _stages_between(before, _stage_totals(port))
    finally:
        server.shutdown()
        thread.join(5)
    assert step["stage_ms_per_batch"] == {"features": 3.0, "produce": 3.0}
    assert step["mean_batch"] == 40.0
    assert step["gc_pauses"] == {
        "gen2": {"pauses": 1.0, "ms": 62.5},
        "gen0": {"pauses": 1.0, "ms": 1.0},
    }
    assert _stage_totals(port) == {}  # nothing listening: no numbers, no error


def test_the_knee_share_of_the_backlog_is_a_lower_bound_when_the_ramp_never_missed() -> None:
    result = _scorer_result()
    result["latency"]["ramp"]["scorer"] |= {"knee_tx_per_s": 9_000, "knee_limit": "ramp_top"}
    assert targets(result)["knee_share_of_backlog>=0.6"] == {
        "value": 0.75,
        "met": True,
        "bound": "lower",
    }
    result["latency"]["ramp"]["scorer"]["knee_tx_per_s"] = 6_000
    assert targets(result)["knee_share_of_backlog>=0.6"]["met"] is None
