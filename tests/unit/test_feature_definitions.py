"""The registry is the single source of feature names, order and bounds."""

from __future__ import annotations

import numpy as np
import pytest

from features import definitions as d
from features import kernels

pytestmark = pytest.mark.unit


def test_names_are_unique_and_in_registry_order() -> None:
    assert len(set(d.FEATURE_NAMES)) == len(d.FEATURE_NAMES)
    assert tuple(f.name for f in d.FEATURES) == d.FEATURE_NAMES
    assert d.FEATURE_NAMES[: len(d.TRANSACTION_FEATURES)] == tuple(
        f.name for f in d.TRANSACTION_FEATURES
    )
    assert all(d.FEATURE_INDEX[n] == i for i, n in enumerate(d.FEATURE_NAMES))


def test_profile_names_are_exactly_the_terminal_risk_columns() -> None:
    expected = (
        *(f"terminal_fraud_count_{w}d" for w in (1, 2, 3, 7, 14, 28, 30)),
        *(f"terminal_fraud_share_{w}d" for w in (1, 2, 3, 7, 14, 28, 30)),
        "terminal_days_since_fraud",
    )
    assert expected == d.PROFILE_FEATURE_NAMES
    assert d.by_name("terminal_days_since_fraud").default == 365.0
    names = pytest.importorskip("features.profiles.names")
    assert names.TERMINAL_RISK_FEATURES == d.PROFILE_FEATURE_NAMES


def test_every_non_profile_definition_has_exactly_one_kernel() -> None:
    n, w = 3, 2
    i64 = np.zeros((n, w), dtype=np.int64)
    produced = {
        **kernels.transaction_features(
            np.zeros(n, np.int64), np.ones(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
        ),
        **kernels.card_features(
            np.zeros(n, np.int64),
            np.ones(n),
            np.zeros(n, np.int64),
            i64,
            np.zeros((n, w)),
            i64,
            np.zeros((n, w), bool),
            np.zeros(n, np.int64),
        ),
        **kernels.terminal_features(np.zeros((n, kernels.TERMINAL_MAX_DAYS), np.int64)),
    }
    assert set(produced) == set(d.REALTIME_FEATURE_NAMES)
    assert all(v.shape == (n,) and v.dtype == np.float64 for v in produced.values())


def test_definitions_are_consistent() -> None:
    for f in d.FEATURES:
        lo, hi = f.clip
        assert lo < hi, f.name
        assert lo <= f.default <= hi, f.name
        assert (f.source == "transaction") == (f.entity == "transaction"), f.name
    assert d.CARD_RING_CAPACITY >= d.CARD_MAX_EVENTS
    assert d.LABEL_DELAY_DAYS == 7


def test_feature_set_id_is_short_and_names_the_version() -> None:
    assert d.FEATURE_SET_ID.startswith(f"fs{d.DEFINITION_VERSION}-")
    assert len(d.FEATURE_SET_ID) == len("fs1-") + 10
    assert d._feature_set_id() == d.FEATURE_SET_ID
