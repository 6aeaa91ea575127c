"""The features benchmark harness end to end on a tiny world against the real Redis: it
produces every number the README quotes (no number is asserted: speed is not a test)."""

from __future__ import annotations

import json

import pytest
import redis

from features.bench import run_feature_bench, summary_lines, write_report

pytestmark = pytest.mark.integration


def test_feature_bench_reports_every_size_memory_and_host(
    redis_client: redis.Redis, redis_prefix: str, tmp_path
) -> None:
    report = run_feature_bench(
        redis_client,
        redis_prefix,
        cards=40,
        terminals=60,
        warm_days=3,
        repeats=4,
        sizes=(1, 20),
        cold_size=20,
    )
    assert set(report["batches"]) == {"1", "20", "20_cold"}
    for key, r in report["batches"].items():
        size = int(key.split("_")[0])
        assert r["batch_ms"]["n"] == max(4, 200 // size)  # small sizes get more batches
        assert r["batch_ms"]["p99"] >= r["batch_ms"]["p50"] > 0
        assert r["redis_commands_per_batch"]  # the script and reads were counted
    assert report["batches"]["20_cold"]["card_cache_hit_rate"] == 0.0
    assert report["world"]["warm_transactions"] >= 40 * 3 * 2 * 0.5
    assert report["memory"]["bytes_per_active_card"] > 0
    assert report["memory"]["events_per_active_card"] > 1
    start, end = report["host"]["calibration_ms"]
    assert start > 0 and end > 0
    lines = summary_lines(report)
    assert any(line.startswith("host calibration") for line in lines)
    path = write_report(report, tmp_path)
    assert json.loads(path.read_text())["batches"].keys() == report["batches"].keys()


def test_feature_bench_seeded_warm_up_holds_the_history(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    report = run_feature_bench(
        redis_client,
        redis_prefix,
        cards=50,
        terminals=80,
        warm_days=4,
        repeats=4,
        sizes=(20,),
        cold_size=None,
        warm="seed",
    )
    world = report["world"]
    assert world["warm_up"] == "seed"
    assert 50 * 4 * 2 * 0.5 <= world["warm_transactions"] <= 50 * 4 * 2 * 1.5
    # the timed batches follow the seeded days and find each card's history
    assert report["memory"]["events_per_active_card"] >= 4
    assert report["batches"]["20"]["card_cache_hit_rate"] < 1.0
