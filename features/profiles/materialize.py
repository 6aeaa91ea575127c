"""Materialise terminal risk: source parquet -> ``feast apply`` -> Feast materialisation ->
writer state (so label updates continue incrementally from the materialised point)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.profiles.cache import publish_profile_change
from features.profiles.feast_repo import (
    REPO_DIR,
    apply_repo,
    feast_connection_string,
    feast_redis_type,
    layout_for,
    open_store,
)
from features.profiles.names import DEFAULT_DELAY_DAYS, TERMINAL_RISK_VIEW
from features.profiles.source import profile_source_frame, write_source_frame
from features.profiles.writer import TerminalRiskWriter, labels_from_frames
from features.redis_nodes import redis_for_url


@dataclass(frozen=True)
class MaterializeReport:
    project: str
    end: datetime
    source_path: Path
    source_rows: int
    terminals: int
    labels_applied: int
    labels_deferred: int
    seconds: dict[str, float] = field(default_factory=dict)


def materialize(
    history_dir: Path,
    *,
    redis_url: str,
    repo_dir: Path = REPO_DIR,
    end: datetime | None = None,
    project: str | None = None,
    delay_days: int = DEFAULT_DELAY_DAYS,
    state_prefix: str = "fraud",
    seed_writer: bool = True,
    redis_options: Mapping[str, Any] | None = None,
) -> MaterializeReport:
    """Materialise the simulator's history (``streams.simulator.read_history``) up to ``end``."""
    from streams.simulator import read_history

    transactions, labels = read_history(history_dir)
    return materialize_frames(
        transactions,
        labels,
        redis_url=redis_url,
        repo_dir=repo_dir,
        end=end,
        project=project,
        delay_days=delay_days,
        state_prefix=state_prefix,
        seed_writer=seed_writer,
        redis_options=redis_options,
    )


def materialize_frames(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    redis_url: str,
    repo_dir: Path = REPO_DIR,
    end: datetime | None = None,
    project: str | None = None,
    delay_days: int = DEFAULT_DELAY_DAYS,
    state_prefix: str = "fraud",
    seed_writer: bool = True,
    redis_options: Mapping[str, Any] | None = None,
) -> MaterializeReport:
    """As :func:`materialize`, from frames already in memory. ``redis_options`` are the
    Redis client's TLS files (``CommonSettings.redis_options``), for Feast's writes and the
    profile writer's alike."""
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    frame = profile_source_frame(transactions, labels, end=end, delay_days=delay_days)
    path = write_source_frame(frame, repo_dir / "data")
    timings["source"] = time.perf_counter() - started

    started = time.perf_counter()
    connection = feast_connection_string(redis_url, redis_options)
    store = open_store(
        repo_dir,
        project=project,
        connection_string=connection,
        redis_type=feast_redis_type(redis_url),
    )
    apply_repo(store)
    timings["apply"] = time.perf_counter() - started

    started = time.perf_counter()
    ttl = store.get_feature_view(TERMINAL_RISK_VIEW).ttl
    if end >= datetime.now(UTC) - ttl:
        store.materialize_incremental(end_date=end)
    else:  # a past end: incremental would start at now - ttl, after end
        store.materialize(start_date=end - ttl, end_date=end)
    client = redis_for_url(redis_url, **(redis_options or {}))
    layout = layout_for(store)  # checked against Feast's own functions: once
    publish_profile_change(client, layout.generation_key)  # readers' caches
    timings["materialize"] = time.perf_counter() - started

    applied = deferred = 0
    if seed_writer:
        started = time.perf_counter()
        writer = TerminalRiskWriter(
            client,
            layout,
            state_prefix=state_prefix,
            delay_days=delay_days,
            key_ttl_seconds=store.config.online_store.key_ttl_seconds or 0,
        )
        writer.seed_transaction_counts(transactions, as_of=end)
        result = writer.apply_labels(labels_from_frames(transactions, labels), as_of=end)
        applied, deferred = result.applied, len(result.deferred)
        timings["seed_writer"] = time.perf_counter() - started
    return MaterializeReport(
        project=store.config.project,
        end=end,
        source_path=path,
        source_rows=len(frame),
        terminals=int(frame["terminal_id"].nunique()),
        labels_applied=applied,
        labels_deferred=deferred,
        seconds=timings,
    )
