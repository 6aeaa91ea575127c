"""Feast's Redis layout as the direct reader decodes it, and the served-value rules."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from features.profiles.layout import (
    FeastLayout,
    decode_timestamp,
    decode_value,
    encode_float,
    encode_timestamp,
)
from features.profiles.names import TERMINAL_RISK_DEFAULTS, TERMINAL_RISK_FEATURES
from features.profiles.reader import FeastRedisProfileReader, finalize_profiles

pytestmark = pytest.mark.unit

DAY_US = 86_400_000_000


def test_keys_and_fields_equal_feasts_own() -> None:
    layout = FeastLayout(project="fraud")
    for terminal in ("T1", "terminal-éü", "x" * 64):
        key = EntityKey(join_keys=["terminal_id"], entity_values=[Value(string_val=terminal)])
        assert layout.entity_key(terminal) == _redis_key("fraud", key, 3)
    assert layout.feature_fields == tuple(
        _mmh3(f"terminal_risk:{name}") for name in TERMINAL_RISK_FEATURES
    )
    assert layout.ts_field == b"_ts:terminal_risk"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Value(float_val=0.25), 0.25),
        (Value(float_val=0.0), 0.0),
        (Value(double_val=2.5), 2.5),
        (Value(int64_val=7), 7.0),
        (Value(int32_val=-3), -3.0),
        (Value(bool_val=True), 1.0),
        (Value(), None),
    ],
)
def test_every_numeric_value_kind_decodes(value: Value, expected: float | None) -> None:
    assert decode_value(value.SerializeToString()) == expected


def test_float_and_timestamp_encodings_equal_protobuf() -> None:
    assert encode_float(0.1) == Value(float_val=0.1).SerializeToString()
    ts = Timestamp(seconds=1_763_900_000)
    assert encode_timestamp(1_763_900_000) == ts.SerializeToString()
    assert decode_timestamp(ts.SerializeToString()) == 1_763_900_000
    assert decode_value(None) is None


def test_finalize_ages_days_since_and_applies_ttl() -> None:
    row = np.array([[1.0] * 7 + [0.5] * 7 + [2.0]])
    values = np.vstack([row, row, row, np.full((1, 15), np.nan)])
    seconds = np.array([1_000_000, 1_000_000, 1_000_000, -1], dtype=np.int64)
    base = 1_000_000 * 1_000_000
    as_of = np.array([base, base + DAY_US // 2, base + 3 * DAY_US, base])
    out = finalize_profiles(values, seconds, as_of, timedelta(days=2))
    assert out.dtype == np.float32
    assert out[0, 14] == 2.0 and out[1, 14] == 2.5
    assert out[0, :14].tolist() == out[1, :14].tolist() == [1.0] * 7 + [0.5] * 7
    assert out[2].tolist() == list(TERMINAL_RISK_DEFAULTS)  # older than the TTL
    assert out[3].tolist() == list(TERMINAL_RISK_DEFAULTS)  # no row


def test_finalize_caps_days_and_defaults_missing_columns() -> None:
    values = np.array([[np.nan] + [0.0] * 13 + [364.9]])
    out = finalize_profiles(
        values, np.array([10]), np.array([10 * 1_000_000 + DAY_US]), timedelta(days=2)
    )
    assert out[0, 0] == 0.0 and out[0, 14] == 365.0


class _FakeRedis:
    """Only what the reader's constructor touches (no I/O in unit tests)."""

    connection_pool = None


def test_fast_and_slow_parsers_agree() -> None:
    layout = FeastLayout(project="fraud")
    reader = FeastRedisProfileReader(_FakeRedis(), layout)
    values = np.arange(15, dtype=np.float32) / 7
    row = layout.encode_row(values, 1_763_900_000)
    present: list[bytes | None] = [row[f] for f in layout.feature_fields]
    present.append(row[layout.ts_field])
    replies: list[list[bytes | None]] = [present, [None] * 16, present]
    fast = reader._parse_fast(replies)
    assert fast is not None
    slow = reader._parse_slow(replies)
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(fast[0], slow[0])  # NaN rows where absent
    assert fast[1].tolist() == [1_763_900_000, -1, 1_763_900_000]
    np.testing.assert_array_equal(fast[0][0], values.astype(np.float64))
    partial = [[*present[:3], None, *present[4:]]]
    assert reader._parse_fast(partial) is None  # missing value inside a row: slow path
    assert np.isnan(reader._parse_slow(partial)[0][0, 3])
