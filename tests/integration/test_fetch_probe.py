"""The idle-fetch probe runs against the real broker and reports what it measured."""

from __future__ import annotations

import pytest

from loadtest.fetch_probe import probe_idle_fetch

pytestmark = pytest.mark.integration


def test_the_probe_counts_the_requests_an_idle_consumer_sends(kafka_bootstrap: str) -> None:
    result = probe_idle_fetch(kafka_bootstrap, partitions=3, warmup_s=1.5, seconds=1.5)
    assert result["requests_per_s"] is not None and result["requests_per_s"] > 0
    assert result["client_cpu_pct"] >= 0 and result["fetch_wait_max_ms"] == 5
    assert result["avg_rtt_us"] is not None
