"""No training/serving skew: what Redis served equals what the offline builder computes.

A simulated multi-day stream is delivered out of order (some rows within the allowed
lateness, some beyond it) with replayed duplicates, through the real Redis in batches of
500; the offline builder then rebuilds the same rows from the same stream.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import redis

from features.definitions import ALLOWED_LATENESS_S, FEATURE_NAMES, REALTIME_FEATURE_NAMES
from features.errors import FeatureStoreUnavailable
from features.interface import RowFlag
from features.offline import build_training_table
from features.realtime import RedisFeatureStore
from streams.events import Transaction
from streams.simulator.config import SimulatorConfig
from streams.simulator.history import simulate_history

pytestmark = pytest.mark.integration

FIELDS = Transaction.__struct_fields__


def arrival_stream(days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A simulated history re-ordered as it would arrive: delays and replays."""
    tx, labels = simulate_history(SimulatorConfig.small(seed=seed), days)
    rng = np.random.default_rng(seed)
    delay_s = np.where(
        rng.random(len(tx)) < 0.10, rng.uniform(0, 1.5 * ALLOWED_LATENESS_S, len(tx)), 0.0
    )
    arrival = tx["event_time"] + pd.to_timedelta(delay_s, unit="s")
    tx = tx.iloc[np.argsort(arrival.to_numpy(), kind="stable")].reset_index(drop=True)
    replay_from = rng.choice(len(tx) - 1000, size=150, replace=False)
    dup = tx.iloc[replay_from].copy()
    dup["_pos"] = replay_from + rng.integers(1, 1000, size=len(replay_from)) + 0.5
    tx["_pos"] = np.arange(len(tx), dtype=float)
    stream = pd.concat([tx, dup]).sort_values("_pos", kind="stable").drop(columns="_pos")
    return stream.reset_index(drop=True), labels


def transactions(df: pd.DataFrame) -> list[Transaction]:
    out = []
    for row in df.itertuples(index=False):
        values = {f: getattr(row, f) for f in FIELDS}
        values["event_time"] = values["event_time"].to_pydatetime()
        for f in ("country", "device_id"):
            if values[f] is None or (isinstance(values[f], float) and np.isnan(values[f])):
                values[f] = None
        out.append(Transaction(**values))
    return out


def serve(
    store: RedisFeatureStore, txs: list[Transaction], batch: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    served = [store.update_and_read_batch(txs[i : i + batch]) for i in range(0, len(txs), batch)]
    raw = np.vstack([m.raw for m in served if m.raw is not None])
    flags = np.concatenate([m.flags for m in served])
    values = np.vstack([m.values for m in served])
    assert np.array_equal(raw.astype(np.float32), values)
    return raw, flags


def test_online_offline_parity_on_a_replayed_multi_day_stream(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    assert_parity(RedisFeatureStore(redis_client, prefix=redis_prefix))


def assert_parity(store: RedisFeatureStore) -> np.ndarray:
    """Serve the replayed stream through ``store`` and check it against the offline
    builder; returns the served raw features (the same on every store)."""
    stream, labels = arrival_stream(days=24, seed=11)
    txs = transactions(stream)
    raw, flags = serve(store, txs)

    first = ~stream["transaction_id"].duplicated(keep="first").to_numpy()
    table = build_training_table(stream, labels, use_profiles=False)
    assert len(table) == int(first.sum()) >= 20_000
    assert (table["transaction_id"].to_numpy() == stream["transaction_id"][first].to_numpy()).all()
    offline = table[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    online = raw[first]
    for j, name in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(online[:, j], offline[:, j], rtol=1e-9, atol=0, err_msg=name)
    assert np.array_equal(online.astype(np.float32), offline.astype(np.float32))

    # the stream really exercised what it claims to
    assert store.stats.duplicates >= 100 and store.stats.too_late > 0
    assert int((flags[first] & RowFlag.TOO_LATE != 0).sum()) == store.stats.too_late
    event_us = stream["event_time"].astype("int64").to_numpy()
    out_of_order_accepted = (event_us[first] < np.maximum.accumulate(event_us[first])) & (
        flags[first] & RowFlag.TOO_LATE == 0
    )
    assert out_of_order_accepted.sum() > 100
    for name in REALTIME_FEATURE_NAMES:
        if name.startswith(("card_", "terminal_")) and name != "card_large_3x_count_7d":
            assert np.count_nonzero(offline[:, FEATURE_NAMES.index(name)]) > 0, name
    # a duplicate was served exactly what its first delivery was served
    ids = stream["transaction_id"].to_numpy()
    firsts = pd.Series(np.arange(len(ids)), index=ids)
    firsts = firsts[~firsts.index.duplicated()]
    dups = np.flatnonzero(~first)
    origin = firsts.loc[ids[dups]].to_numpy()
    applied = flags[origin] & RowFlag.TOO_LATE == 0
    assert applied.sum() >= 100
    assert np.array_equal(raw[dups[applied]], raw[origin[applied]])
    assert (flags[dups[applied]] & RowFlag.DUPLICATE != 0).all()
    return raw


def state_of(client: redis.Redis, prefix: str) -> dict[str, bytes]:
    """Every card and terminal value (not a store's pipelining chain key: a token that
    expires in a minute and is named per store object)."""
    keys = client.scan_iter(match=f"{prefix}:*", count=1000)
    return {k.decode()[len(prefix) :]: client.get(k) for k in keys if b":chain:" not in k}


def test_replaying_10000_transactions_changes_nothing(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    assert_replay_changes_nothing(
        redis_client, redis_prefix, lambda prefix: RedisFeatureStore(redis_client, prefix=prefix)
    )


def assert_replay_changes_nothing(
    redis_client: redis.Redis, redis_prefix: str, open_store: Callable[[str], RedisFeatureStore]
) -> np.ndarray:
    """The same 10,000 transactions served once, and twice on a second namespace: equal
    features and equal state; returns the features served."""
    stream, _ = arrival_stream(days=12, seed=5)
    stream = stream.drop_duplicates("transaction_id").iloc[:10_000]
    txs = transactions(stream)
    once = open_store(f"{redis_prefix}a")
    twice = open_store(f"{redis_prefix}b")
    served_once, _ = serve(once, txs)
    served_first, _ = serve(twice, txs)
    served_again, flags = serve(twice, txs)  # a crash before any commit: all replayed

    assert np.array_equal(served_once, served_first)
    assert np.array_equal(served_again, served_once)
    assert state_of(redis_client, f"{redis_prefix}b") == state_of(redis_client, f"{redis_prefix}a")
    assert len(state_of(redis_client, f"{redis_prefix}a")) > 1000
    accepted = flags & RowFlag.TOO_LATE == 0
    assert (flags[accepted] & RowFlag.DUPLICATE != 0).all()
    assert twice.stats.duplicates == int(accepted.sum()) > 9_000
    return served_once


def test_redis_unavailable_is_a_typed_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    store = RedisFeatureStore(client, prefix="unreachable")
    probe = Transaction(
        transaction_id="tx1",
        event_time=pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime(),
        card_id="C1",
        customer_id="U1",
        terminal_id="T1",
        amount=1.0,
    )
    with pytest.raises(FeatureStoreUnavailable) as err:
        store.update_and_read_batch([probe])
    assert err.value.where == f"127.0.0.1:{port}/0"
    assert store.stats.transactions == 0
