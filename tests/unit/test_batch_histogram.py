from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.scorer.batch_histogram import BatchHistogram

pytestmark = pytest.mark.unit

BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 1.0)


def _series(registry: CollectorRegistry) -> dict[str, float]:
    """name{labels} -> value of every sample except the plain histogram's ``_created``."""
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_same_series_as_a_plain_histogram_fed_one_value_at_a_time() -> None:
    rng = np.random.default_rng(7)
    batches = [rng.exponential(0.02, size=n) for n in (1, 37, 500, 0, 120)]
    batches.append(np.array(BUCKETS))  # values on a bound count in that bucket (le)
    batches.append(np.array([0.0, 5.0, 1e9]))  # zero and above every bound
    plain_registry, batch_registry = CollectorRegistry(), CollectorRegistry()
    plain = Histogram("lat_seconds", "doc", buckets=BUCKETS, registry=plain_registry)
    batched = BatchHistogram("lat_seconds", "doc", BUCKETS, registry=batch_registry)
    for values in batches:
        for v in values:
            plain.observe(float(v))
        batched.observe_many(values)

    expected, got = _series(plain_registry), _series(batch_registry)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    assert got["lat_seconds_count{}"] == sum(len(b) for b in batches)
    # and the text exposition a Prometheus server scrapes carries the same bucket lines
    bucket_lines = [
        line
        for line in generate_latest(plain_registry).decode().splitlines()
        if line.startswith("lat_seconds_bucket")
    ]
    assert bucket_lines
    assert all(line in generate_latest(batch_registry).decode() for line in bucket_lines)


def test_non_finite_values_are_ignored_and_single_observe_works() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("h_seconds", "doc", BUCKETS, registry=registry)
    histogram.observe_many([float("nan"), float("inf"), 0.003])
    histogram.observe(0.5)
    series = _series(registry)
    assert series["h_seconds_count{}"] == 2
    assert series["h_seconds_sum{}"] == pytest.approx(0.503)
    assert series["h_seconds_bucket{le=0.005}"] == 1
    assert series["h_seconds_bucket{le=1.0}"] == 2


def test_bad_buckets_and_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram("x_seconds", "doc", (0.1, 0.05), registry=None)
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram("x_seconds", "doc", (), registry=None)
    registry = CollectorRegistry()
    BatchHistogram("x_seconds", "doc", BUCKETS, registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        BatchHistogram("x_seconds", "doc", BUCKETS, registry=registry)
