"""Benchmark: direct Feast-layout reader vs ``FeatureStore.get_online_features``, same keys,
same run, real Redis. Prints nothing itself; returns the numbers (the CLI writes JSON)."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from features.profiles.feast_repo import (
    REPO_DIR,
    direct_reader,
    feast_connection_string,
    open_store,
    sdk_read_batch,
)
from features.profiles.materialize import materialize_frames


def synthetic_history(
    *, n_terminals: int, n_tx: int, days: int, end: datetime, seed: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions and labels (3% fraud, labelled 0-10 days later) ending at ``end``."""
    rng = np.random.default_rng(seed)
    start_s = int(end.timestamp()) - days * 86400
    seconds = np.sort(rng.integers(start_s, int(end.timestamp()), n_tx))
    tx = pd.DataFrame(
        {
            "transaction_id": [f"b{i}" for i in range(n_tx)],
            "terminal_id": [f"T{int(k)}" for k in rng.integers(0, n_terminals, n_tx)],
            "event_time": pd.to_datetime(seconds, unit="s", utc=True),
        }
    )
    labels = pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"],
            "is_fraud": (rng.random(n_tx) < 0.03).astype(np.int8),
            "labelled_at": tx["event_time"]
            + pd.to_timedelta(rng.integers(0, 10 * 86400, n_tx), unit="s"),
        }
    )
    return tx, labels


def _percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000.0
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "rounds": len(samples),
    }


def run_profile_bench(
    redis_url: str,
    *,
    keys: int = 500,
    terminals: int = 5000,
    rounds: int = 300,
    sdk_rounds: int = 30,
) -> dict[str, Any]:
    """Materialise a synthetic history into a throw-away project, time both readers."""
    end = datetime.now(UTC).replace(microsecond=0)
    tx, labels = synthetic_history(n_terminals=terminals, n_tx=terminals * 40, days=40, end=end)
    project = f"fraud_bench_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="profile-bench-"))
    repo = workdir / "repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    client = redis.Redis.from_url(redis_url)
    try:
        report = materialize_frames(
            tx,
            labels,
            redis_url=redis_url,
            repo_dir=repo,
            end=end,
            project=project,
            state_prefix=f"bench{uuid.uuid4().hex[:8]}",
            seed_writer=False,
        )
        store = open_store(
            repo, project=project, connection_string=feast_connection_string(redis_url)
        )
        reader = direct_reader(store, client)
        rng = np.random.default_rng(1)
        ids = [f"T{int(k)}" for k in rng.integers(0, terminals, keys)]
        as_of = pd.Series([pd.Timestamp(end)] * keys)
        as_of_us = np.full(keys, int(end.timestamp()) * 1_000_000, dtype=np.int64)
        direct = reader.read_batch(ids, as_of_us)
        parity = bool(np.array_equal(direct, sdk_read_batch(store, ids, as_of)))

        direct_times: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            reader.read_batch(ids, as_of_us)
            direct_times.append(time.perf_counter() - started)
        sdk_times: list[float] = []
        refs = [f"terminal_risk:{name}" for name in reader.layout.features]
        rows = [{"terminal_id": t} for t in ids]
        for _ in range(sdk_rounds):
            started = time.perf_counter()
            store.get_online_features(features=refs, entity_rows=rows).to_dict()
            sdk_times.append(time.perf_counter() - started)
        direct_stats, sdk_stats = _percentiles(direct_times), _percentiles(sdk_times)
        return {
            "benchmark": "profiles",
            "at": datetime.now(UTC).isoformat(),
            "keys_per_batch": keys,
            "terminals": terminals,
            "materialize_seconds": report.seconds,
            "parity": parity,
            "direct_reader": {
                **direct_stats,
                "us_per_key_p50": direct_stats["p50_ms"] * 1000 / keys,
            },
            "feast_sdk_get_online_features": {
                **sdk_stats,
                "us_per_key_p50": sdk_stats["p50_ms"] * 1000 / keys,
            },
            "speedup_p50": sdk_stats["p50_ms"] / direct_stats["p50_ms"],
            "speedup_p99": sdk_stats["p99_ms"] / direct_stats["p99_ms"],
        }
    finally:
        stale = list(client.scan_iter(match=b"*" + project.encode(), count=1000))
        for start in range(0, len(stale), 500):
            client.delete(*stale[start : start + 500])
        shutil.rmtree(workdir, ignore_errors=True)


def bench_terminal_risk(n_rows: int = 2_000_000, terminals: int = 10_000) -> dict[str, float]:
    """Seconds of :func:`terminal_risk` for ``n_rows`` training rows (handbook size)."""
    from features.profiles.risk import terminal_risk

    end = datetime(2024, 7, 1, tzinfo=UTC)
    tx, labels = synthetic_history(n_terminals=terminals, n_tx=n_rows, days=180, end=end)
    started = time.perf_counter()
    terminal_risk(tx, labels, tx["event_time"])
    elapsed = time.perf_counter() - started
    return {
        "rows": n_rows,
        "terminals": terminals,
        "seconds": elapsed,
        "us_per_row": elapsed / n_rows * 1e6,
    }
