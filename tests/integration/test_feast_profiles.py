"""Feast profiles on the real Redis: direct reader vs ``get_online_features``, the writer,
and the stock ``feast`` CLI in a copy of ``features/repo``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from features.profiles.feast_repo import (
    REPO_DIR,
    apply_repo,
    direct_reader,
    feast_connection_string,
    layout_for,
    open_store,
    sdk_read_batch,
    sdk_read_raw,
)
from features.profiles.materialize import materialize_frames
from features.profiles.names import TERMINAL_RISK_DEFAULTS, TERMINAL_RISK_VIEW
from features.profiles.risk import terminal_risk
from features.profiles.source import profile_source_frame, write_source_frame
from features.profiles.writer import TerminalRiskWriter, labels_from_frames
from tests.profiles_data import T0, random_history

pytestmark = pytest.mark.integration

DEFAULTS = np.asarray(TERMINAL_RISK_DEFAULTS, dtype=np.float32)


@pytest.fixture()
def feast_repo(tmp_path: Path, redis_prefix: str, redis_url: str) -> Iterator[tuple[Path, str]]:
    """A copy of features/repo and a project name unique to the test (Feast keys end with
    the project name); every key of the project is deleted afterwards."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"fraud_{redis_prefix}"
    yield repo, project
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=b"*" + project.encode(), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def _as_of(moment: datetime, n: int) -> pd.Series:
    return pd.Series([pd.Timestamp(moment)] * n)


def _assert_matches_offline(served: np.ndarray, offline: np.ndarray) -> None:
    np.testing.assert_array_equal(served[:, :14], offline[:, :14])
    np.testing.assert_allclose(served[:, 14], offline[:, 14], rtol=2e-6)


def test_direct_reader_matches_feast_sdk(
    feast_repo: tuple[Path, str], redis_url: str, redis_client: redis.Redis
) -> None:
    repo, project = feast_repo
    tx, lab = random_history(seed=11, n_tx=3000, n_terminals=25, days=30)
    end = T0 + timedelta(days=31, hours=5)
    report = materialize_frames(
        tx, lab, redis_url=redis_url, repo_dir=repo, end=end, project=project, seed_writer=False
    )
    assert report.terminals == 25
    store = open_store(repo, project=project, connection_string=feast_connection_string(redis_url))
    reader = direct_reader(store, redis_client)
    ids = [f"T{i}" for i in range(25)] + ["unknown-1", "T-unknown"]

    values, seconds = reader.read_raw(ids)
    sdk_values, sdk_seconds = sdk_read_raw(store, ids)
    np.testing.assert_array_equal(values, sdk_values)  # every feature, NaN where absent
    np.testing.assert_array_equal(seconds, sdk_seconds)
    assert (seconds[:25] > 0).all() and (seconds[25:] == -1).all()

    served = reader.read_batch(ids, _as_of(end, len(ids)))
    assert served.dtype == np.float32 and served.shape == (27, 15)
    np.testing.assert_array_equal(served, sdk_read_batch(store, ids, _as_of(end, len(ids))))
    np.testing.assert_array_equal(served[25:], np.vstack([DEFAULTS, DEFAULTS]))
    offline = terminal_risk(tx, lab, _as_of(end, 25), terminal_ids=ids[:25]).to_numpy()
    _assert_matches_offline(served[:25], offline)
    assert (served[:25, :7] > 0).any()

    # a row missing one feature (slow path): that column falls back to its default
    key = reader.layout.entity_key("T3")
    redis_client.hdel(key, reader.layout.feature_fields[2])
    partial = reader.read_batch(ids, _as_of(end, len(ids)))
    np.testing.assert_array_equal(partial, sdk_read_batch(store, ids, _as_of(end, len(ids))))
    assert partial[3, 2] == 0.0 and np.isnan(reader.read_raw(["T3"])[0][0, 2])

    # older than the view TTL at the as-of time: defaults from both readers
    late = end + store.get_feature_view(TERMINAL_RISK_VIEW).ttl + timedelta(days=1)
    expired = reader.read_batch(ids, _as_of(late, len(ids)))
    np.testing.assert_array_equal(expired, np.tile(DEFAULTS, (len(ids), 1)))
    np.testing.assert_array_equal(expired, sdk_read_batch(store, ids, _as_of(late, len(ids))))


def test_redis_key_ttl_expired_rows_read_as_defaults(
    feast_repo: tuple[Path, str], redis_url: str, redis_client: redis.Redis
) -> None:
    repo, project = feast_repo
    tx, lab = random_history(seed=12, n_tx=400, n_terminals=6, days=20)
    end = T0 + timedelta(days=21)
    write_source_frame(profile_source_frame(tx, lab, end=end), repo / "data")
    store = open_store(
        repo,
        project=project,
        connection_string=feast_connection_string(redis_url),
        key_ttl_seconds=1,
    )
    apply_repo(store)
    store.materialize(start_date=end - timedelta(days=2), end_date=end)
    reader = direct_reader(store, redis_client)
    ids = [f"T{i}" for i in range(6)]
    keys = [reader.layout.entity_key(t) for t in ids]
    assert redis_client.exists(*keys) == 6
    deadline = time.monotonic() + 15
    while redis_client.exists(*keys) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert redis_client.exists(*keys) == 0
    values, seconds = sdk_read_raw(store, ids)
    assert np.isnan(values).all() and (seconds == -1).all()
    served = reader.read_batch(ids, _as_of(end, 6))
    np.testing.assert_array_equal(served, np.tile(DEFAULTS, (6, 1)))
    np.testing.assert_array_equal(served, sdk_read_batch(store, ids, _as_of(end, 6)))


def test_writer_applies_labels_incrementally_and_idempotently(
    feast_repo: tuple[Path, str], redis_url: str, redis_client: redis.Redis, redis_prefix: str
) -> None:
    repo, project = feast_repo
    tx, lab = random_history(seed=13, n_tx=4000, n_terminals=20, days=40)
    mid = T0 + timedelta(days=41, hours=1)
    end = T0 + timedelta(days=41, hours=20)
    # labels known at `mid` are materialised; those arriving in (mid, end] go through the writer
    fraud = lab[lab["is_fraud"] == 1].merge(
        tx[["transaction_id", "event_time"]], on="transaction_id"
    )
    usable_at = fraud["labelled_at"].where(
        fraud["labelled_at"] > fraud["event_time_y"], fraud["event_time_y"]
    )
    early = lab[~lab["transaction_id"].isin(fraud["transaction_id"][usable_at > mid])]
    late_ids = set(fraud["transaction_id"][(usable_at > mid) & (usable_at <= end)])
    future_ids = set(fraud["transaction_id"][usable_at > end])
    assert late_ids and future_ids

    materialize_frames(
        tx,
        early,
        redis_url=redis_url,
        repo_dir=repo,
        end=mid,
        project=project,
        state_prefix=redis_prefix,
    )
    store = open_store(repo, project=project, connection_string=feast_connection_string(redis_url))
    reader = direct_reader(store, redis_client)
    writer = TerminalRiskWriter(
        redis_client, layout_for(store), state_prefix=redis_prefix, key_ttl_seconds=3600
    )
    writer.seed_transaction_counts(tx, as_of=end)
    ids = [f"T{i}" for i in range(20)]
    before = reader.read_batch(ids, _as_of(mid, 20))
    _assert_matches_offline(
        before, terminal_risk(tx, early, _as_of(mid, 20), terminal_ids=ids).to_numpy()
    )

    incoming = [
        label
        for label in labels_from_frames(tx, lab)
        if label.transaction_id in late_ids | future_ids
    ]
    result = writer.apply_labels(incoming, as_of=end)
    assert result.applied == len(late_ids)
    assert {label.transaction_id for label in result.deferred} == future_ids
    touched = sorted({label.terminal_id for label in incoming if label.transaction_id in late_ids})
    assert result.rows_written == len(touched)

    offline = terminal_risk(tx, lab, _as_of(end, 20), terminal_ids=ids).to_numpy()
    served = reader.read_batch(ids, _as_of(end, 20))
    np.testing.assert_array_equal(served, sdk_read_batch(store, ids, _as_of(end, 20)))
    _assert_matches_offline(served, offline)
    index = [ids.index(t) for t in touched]
    np.testing.assert_array_equal(served[index], offline[index])  # rows written at `end`: exact
    assert not np.array_equal(served[index], before[index])

    again = writer.apply_labels(incoming, as_of=end)  # a replay after a crash
    assert again.applied == 0 and again.duplicates == len(late_ids)
    np.testing.assert_array_equal(reader.read_batch(ids, _as_of(end, 20)), served)


def test_stock_feast_cli_apply_and_materialize(
    feast_repo: tuple[Path, str], redis_url: str, redis_client: redis.Redis
) -> None:
    repo, project = feast_repo
    now = datetime.now(UTC).replace(microsecond=0)
    tx, lab = random_history(seed=14, n_tx=800, n_terminals=8, days=25)
    shift = pd.Timestamp(now) - pd.Timestamp(T0) - pd.Timedelta(days=25)
    tx["event_time"] += shift
    lab["labelled_at"] += shift
    lab["event_time"] += shift
    write_source_frame(profile_source_frame(tx, lab, end=now), repo / "data")
    yaml_path = repo / "feature_store.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("project: fraud\n", f"project: {project}\n"))
    feast = str(Path(sys.executable).parent / "feast")
    env = {**os.environ, "FRAUD_FEAST_REDIS": feast_connection_string(redis_url)}
    applied = subprocess.run([feast, "apply"], cwd=repo, env=env, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr[-2000:]
    materialized = subprocess.run(
        [feast, "materialize-incremental", now.strftime("%Y-%m-%dT%H:%M:%S")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert materialized.returncode == 0, materialized.stderr[-2000:]

    store = open_store(repo, connection_string=feast_connection_string(redis_url))
    assert store.config.project == project
    ids = [f"T{i}" for i in range(8)]
    served = direct_reader(store, redis_client).read_batch(ids, _as_of(now, 8))
    np.testing.assert_array_equal(served, sdk_read_batch(store, ids, _as_of(now, 8)))
    _assert_matches_offline(
        served, terminal_risk(tx, lab, _as_of(now, 8), terminal_ids=ids).to_numpy()
    )
